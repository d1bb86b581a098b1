"""Dataset discovery and loading in every layout, with bad pairs reported by name."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from training.data import binarise_mask, find_pairs, load_dataset, pad_to_multiple


def write_pair(images: Path, masks: Path, name: str, size=(48, 64), mask_value=255, rgb_mask=False):
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    h, w = size
    cv2.imwrite(str(images / f"{name}.jpg"), np.full((h, w, 3), 128, np.uint8))
    mask = np.zeros((h, w), np.uint8)
    mask[h // 2, :] = mask_value
    if rgb_mask:
        mask = np.stack([np.zeros_like(mask), np.zeros_like(mask), mask], axis=2)  # red in BGR
    cv2.imwrite(str(masks / f"{name}.png"), mask)


def test_flat_images_and_masks_layout(tmp_path):
    write_pair(tmp_path / "images", tmp_path / "masks", "a")
    samples, problems = load_dataset(tmp_path)
    assert [s.name for s in samples] == ["a"] and problems == []
    assert samples[0].mask.sum() == 64


def test_split_layout_of_the_shared_datasets(tmp_path):
    write_pair(tmp_path / "train" / "images", tmp_path / "train" / "masks", "a")
    write_pair(tmp_path / "test" / "images", tmp_path / "test" / "masks", "b")
    pairs, _ = find_pairs(tmp_path, "train")
    assert [p.name for p in pairs] == ["a"]
    pairs, _ = find_pairs(tmp_path)
    assert sorted(p.name for p in pairs) == ["a", "b"]


def test_camvid_layout_of_the_seed(tmp_path):
    write_pair(tmp_path / "train", tmp_path / "trainannot", "a", mask_value=1)
    write_pair(tmp_path / "val", tmp_path / "valannot", "b", mask_value=1)
    samples, problems = load_dataset(tmp_path, "train")
    assert [s.name for s in samples] == ["a"] and samples[0].mask.sum() == 64


def test_odd_image_sizes_are_padded_to_the_network_multiple(tmp_path):
    write_pair(tmp_path / "images", tmp_path / "masks", "odd", size=(484, 648))
    (sample,), _ = load_dataset(tmp_path)
    padded, (h, w) = pad_to_multiple(sample.image, 32)
    assert padded.shape[:2] == (512, 672) and (h, w) == (484, 648)


@pytest.mark.parametrize("value, rgb", [(1, False), (255, False), (255, True)])
def test_mask_encodings_binarise_the_same(tmp_path, value, rgb):
    write_pair(tmp_path / "images", tmp_path / "masks", "m", mask_value=value, rgb_mask=rgb)
    (sample,), _ = load_dataset(tmp_path)
    assert sample.mask.dtype == bool and sample.mask.sum() == 64


def test_binarise_ignores_jpeg_like_noise_in_255_masks():
    mask = np.array([[0, 3, 120, 200, 255]], np.uint8)
    assert binarise_mask(mask).tolist() == [[False, False, False, True, True]]


def test_bad_pairs_are_reported_by_name_and_skipped(tmp_path):
    write_pair(tmp_path / "images", tmp_path / "masks", "good")
    write_pair(tmp_path / "images", tmp_path / "masks", "mismatch")
    cv2.imwrite(str(tmp_path / "masks" / "mismatch.png"), np.zeros((10, 10), np.uint8))
    (tmp_path / "images" / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "masks" / "broken.png").write_bytes(b"not a png")
    cv2.imwrite(str(tmp_path / "images" / "orphan.jpg"), np.zeros((8, 8, 3), np.uint8))
    samples, problems = load_dataset(tmp_path)
    assert [s.name for s in samples] == ["good"]
    text = " | ".join(problems)
    assert "mismatch" in text and "broken" in text and "orphan" in text


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no images"):
        find_pairs(tmp_path)
