"""Deep-zoom pyramids of large images, and their tiles served only to users who may see them."""

from xml.etree import ElementTree

from django.urls import reverse
from PIL import Image

from crackportal.inspections import pyramid
from tests.factories import make_image, make_run


def test_pyramid_has_every_level_and_tiles_of_the_right_size(tmp_path):
    image = Image.new("RGB", (3000, 1000), (120, 120, 120))
    dzi = pyramid.build_dzi(image, tmp_path, "photo")
    root = ElementTree.fromstring(dzi.read_text())
    size = root.find("{http://schemas.microsoft.com/deepzoom/2008}Size")
    assert (size.get("Width"), size.get("Height")) == ("3000", "1000")
    levels = sorted(int(p.name) for p in (tmp_path / "photo_files").iterdir())
    assert levels == list(range(13))  # 2**12 >= 3000
    top = tmp_path / "photo_files" / "12"
    assert len(list(top.iterdir())) == 6 * 2  # ceil(3000/510) x ceil(1000/510)
    with Image.open(top / "0_0.jpg") as tile:
        assert tile.size == (511, 511)  # tile plus one px of overlap
    with Image.open(tmp_path / "photo_files" / "0" / "0_0.jpg") as tile:
        assert tile.size == (1, 1)


def test_only_large_images_get_a_pyramid():
    assert not pyramid.needs_pyramid(2048, 1500) and pyramid.needs_pyramid(4000, 3000)


def test_tiles_are_served_to_the_tunnel_and_refused_elsewhere(
    client, inspector, manager, tunnel, django_user_model, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    image = make_image(make_run(tunnel))
    from crackportal import media

    pyramid.build_dzi(Image.new("RGB", (600, 400)), tmp_path / "scratch", "photo")
    media.publish_tree(tmp_path / "scratch", image.pyramid_prefix)
    client.force_login(inspector)
    assert client.get(reverse("image-dzi", args=[image.pk, "photo"])).status_code == 200
    tile = client.get(reverse("image-tile", args=[image.pk, "photo", "10/0_0.jpg"]))
    assert tile.status_code == 200 and tile["Content-Type"] == "image/jpeg"
    assert (
        client.get(reverse("image-tile", args=[image.pk, "photo", "10/../../x.jpg"])).status_code
        == 404
    )
    assert client.get(reverse("image-dzi", args=[image.pk, "secrets"])).status_code == 404

    from tests.conftest import make_user

    client.force_login(make_user(django_user_model, "elsewhere", "inspector"))  # not assigned
    assert client.get(reverse("image-dzi", args=[image.pk, "photo"])).status_code == 404
    assert (tmp_path / image.pyramid_prefix / "photo.dzi").is_file() and image.has_pyramid()


def test_overlay_pyramid_keeps_a_one_pixel_crack_visible_at_every_level(tmp_path):
    import numpy as np

    mask = np.zeros((1500, 3000), bool)
    mask[700, 100:2900] = True  # a 1-px crack across the image
    pyramid.build_mask_dzi(mask, tmp_path, "overlay", (255, 40, 40))
    files = tmp_path / "overlay_files"
    for level in sorted(int(p.name) for p in files.iterdir()):
        tiles = sorted((files / str(level)).iterdir())
        seen = 0
        for path in tiles:
            with Image.open(path) as tile:
                assert tile.mode == "P" and tile.info["transparency"] == 0
                rgba = np.asarray(tile.convert("RGBA"))
            crack = rgba[..., 3] == 255
            assert (rgba[crack][:, :3] == (255, 40, 40)).all()
            seen += crack.sum()
        assert seen > 0, f"the crack vanished at level {level}"
    with Image.open(files / "12" / "0_0.png") as empty_corner:  # no crack there: transparent
        assert not np.asarray(empty_corner.convert("RGBA"))[..., 3].any()


def test_photo_pyramid_tiles_show_the_photo(tmp_path):
    import numpy as np

    rgb = np.zeros((1000, 3000, 3), np.uint8)
    rgb[:, :1500] = (200, 30, 30)  # left half red, right half blue
    rgb[:, 1500:] = (30, 30, 200)
    pyramid.build_dzi(rgb, tmp_path, "photo")
    with Image.open(tmp_path / "photo_files" / "12" / "0_0.jpg") as left:
        assert np.abs(np.asarray(left, int).mean((0, 1)) - (200, 30, 30)).max() < 6
    with Image.open(tmp_path / "photo_files" / "12" / "5_0.jpg") as right:
        assert np.abs(np.asarray(right, int).mean((0, 1)) - (30, 30, 200)).max() < 6
    with Image.open(tmp_path / "photo_files" / "0" / "0_0.jpg") as whole:  # halves averaged
        assert (
            whole.size == (1, 1) and np.abs(np.asarray(whole, int)[0, 0] - (115, 30, 115)).max() < 8
        )
