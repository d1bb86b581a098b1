"""Hostile and unusual files found in testing: each failed before and passes now."""

import io
import zipfile

import numpy as np
import pytest
from django.core.files.base import ContentFile
from PIL import Image

from crackportal.inspections import annotations, services
from crackportal.inspections.imaging import mask_bool, rgb8
from crackportal.inspections.models import InspectionRun
from crackportal.inspections.uploads import IncomingFile, UploadError, clean_file_name
from inference.synthetic import survey_image
from tests.factories import make_image, make_run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def media(settings, tmp_path, monkeypatch):
    settings.MEDIA_ROOT = tmp_path
    monkeypatch.setattr(services, "enqueue_images", lambda ids, **kw: None)


def _bytes(im: Image.Image, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def _grey_photo():
    rgb, truth, _ = survey_image(320, 240, n_cracks=2, seed=3, widths_px=(3.0, 5.0))
    return rgb.mean(axis=2), truth


@pytest.mark.parametrize(
    "mode, scale, fmt",
    [("I;16", 257, "PNG"), ("I", 65537 * 8, "TIFF"), ("F", 1 / 255, "TIFF")],
)
def test_high_bit_depth_images_keep_their_picture(mode, scale, fmt):
    grey, truth = _grey_photo()
    values = grey * scale
    dtype = {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]
    im = Image.fromarray(values.astype(dtype))
    assert im.mode == mode
    with Image.open(io.BytesIO(_bytes(im, fmt))) as decoded:
        rgb = rgb8(decoded)
    assert rgb.dtype == np.uint8 and rgb.shape == (240, 320, 3)
    # the cracks are still darker than the lining: neither all white nor all black
    assert rgb[..., 0][truth].mean() < rgb[..., 0][~truth].mean() - 30
    assert 0 < rgb.mean() < 255


def test_a_16_bit_annotation_mask_is_read_by_its_values():
    mask = np.zeros((40, 60), np.uint16)
    mask[10:12, :] = 65535
    with Image.open(io.BytesIO(_bytes(Image.fromarray(mask), "PNG"))) as im:
        read = mask_bool(im)
    assert read.sum() == 120  # not "all crack"


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_a_mask_painted_on_a_transparent_layer_is_read_by_its_strokes(mode):
    """Painted in an image editor on a transparent layer (or the portal's own overlay edited):
    the see-through pixels are stored white or any colour. They read as crack, so the whole
    image became one "critical" crack; they are background now."""
    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[..., :3] = 255  # white, and fully transparent
    rgba[10:12, :] = (255, 40, 40, 255)  # a red stroke
    im = Image.fromarray(rgba, "RGBA")
    if mode == "LA":
        im = im.convert("LA")
    elif mode == "P":
        im = im.quantize(colors=4)  # a palette PNG with a transparent index
        im.info["transparency"] = im.getpixel((0, 0))
    with Image.open(io.BytesIO(_bytes(im, "PNG"))) as read:
        assert read.mode == mode
        assert mask_bool(read).sum() == 120


def test_exif_orientation_is_applied_on_ingest(tunnel):
    rgb, _, _ = survey_image(480, 320, seed=1)
    exif = Image.Exif()
    exif[0x0112] = 6  # a phone held upright: rotate 90° clockwise to view
    data = _bytes(Image.fromarray(rgb), "JPEG", exif=exif.tobytes())
    run = make_run(tunnel)
    services.upload_survey(run=run, files=[IncomingFile("phone.jpg", io.BytesIO(data), len(data))])
    image = run.images.get()
    assert (image.width, image.height) == (320, 480)  # as the browser shows it
    with image.file.open("rb") as fh:
        assert fh.read() == data  # the original bytes untouched
    with image.file.open("rb") as fh, Image.open(fh) as im:
        assert rgb8(im).shape == (480, 320, 3)


@pytest.mark.parametrize("name", ["a" * 244 + ".jpg", "ü" * 200 + ".jpg"])
def test_very_long_names_are_stored_and_the_rest_of_the_upload_goes_through(tunnel, name):
    from tests.conftest import survey_jpeg

    run = make_run(tunnel)
    files = [
        IncomingFile(n, io.BytesIO(d), len(d))
        for n, d in [
            ("first.jpg", survey_jpeg(1)),
            (name, survey_jpeg(2)),
            ("last.jpg", survey_jpeg(3)),
        ]
    ]
    result = services.upload_survey(run=run, files=files)
    assert len(result.accepted) == 3 and result.failed == []
    stored = run.images.order_by("id")
    long_one = stored[1]
    assert long_one.original_name.endswith("….jpg") and len(long_one.original_name) <= 120
    assert len(long_one.file.name.rsplit("/", 1)[-1].encode()) < 100


def test_names_lose_newlines_and_direction_overrides():
    assert clean_file_name("evil\u202egpj.exe") == "evilgpj.exe"
    assert clean_file_name("two\nlines.jpg") == "twolines.jpg"
    assert clean_file_name("dir/../x.jpg") == "x.jpg"


def test_zip_member_names_are_cleaned(tunnel):
    from tests.conftest import survey_jpeg

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("line\nbreak.jpg", survey_jpeg(4))
        z.writestr("x" * 300 + ".jpg", survey_jpeg(5))
    data = buffer.getvalue()
    run = make_run(tunnel)
    result = services.upload_survey(
        run=run, files=[IncomingFile("s.zip", io.BytesIO(data), len(data))]
    )
    assert sorted(result.accepted)[0] == "linebreak.jpg" and len(result.accepted) == 2
    assert all(len(i.original_name) <= 120 for i in run.images.all())


def test_a_storage_failure_fails_one_file_and_the_run_is_never_stuck(tunnel, monkeypatch):
    from tests.conftest import survey_jpeg

    real_save = services.SurveyImage.file.field.attr_class.save
    calls = []

    def flaky(self, name, content, save=True):
        calls.append(name)
        if len(calls) == 2:
            raise OSError(36, "File name too long")
        return real_save(self, name, content, save)

    monkeypatch.setattr(services.SurveyImage.file.field.attr_class, "save", flaky)
    run = make_run(tunnel)
    files = [IncomingFile(f"{k}.jpg", io.BytesIO(survey_jpeg(k)), 1) for k in range(3)]
    result = services.upload_survey(run=run, files=files)
    assert result.accepted == ["0.jpg", "2.jpg"]
    assert result.failed == [("1.jpg", "OSError: [Errno 36] File name too long")]
    run.refresh_from_db()
    assert run.status == InspectionRun.Status.PROCESSING  # two images are on their way


def test_a_run_with_nothing_stored_is_not_left_processing(tunnel):
    run = make_run(tunnel)
    InspectionRun.objects.filter(pk=run.pk).update(status="processing")
    services.refresh_run_status(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == InspectionRun.Status.UPLOADING


def test_different_files_with_one_name_sharing_a_manifest_row_are_reported(tunnel):
    from tests.conftest import survey_jpeg

    manifest = (
        b"filename,chainage_start_m,chainage_end_m,arc_start_m,arc_end_m,mm_per_px\n"
        b"dup.jpg,0,0.48,0,0.32,\n"
    )
    run = make_run(tunnel)
    files = [IncomingFile("dup.jpg", io.BytesIO(survey_jpeg(k)), 1) for k in (1, 2)]
    result = services.upload_survey(
        run=run, files=files, manifest=IncomingFile("m.csv", io.BytesIO(manifest), len(manifest))
    )
    assert any("same name share one manifest row" in w and "dup.jpg" in w for w in result.warnings)


@pytest.mark.parametrize("side", [12000, 20000])
def test_a_huge_annotation_mask_is_refused_from_its_header(tunnel, side):
    run = make_run(tunnel)
    image = make_image(run, size=(480, 320))
    image.file.save("o.jpg", ContentFile(b""), save=True)
    data = _bytes(Image.new("1", (side, side)), "PNG")
    # over Pillow's bomb limit it is refused before even the header is trusted
    expected = "px but the image is 480×320" if side == 12000 else "far larger than any survey"
    with pytest.raises(UploadError, match=expected):
        annotations.upload_annotation(image=image, stream=io.BytesIO(data))


def test_an_inverted_mask_is_refused_with_the_reason(tunnel):
    """Cracks drawn black on white (a common export) read as one crack the size of the
    image; measured, every figure of the image became nonsense. Refused, nothing stored."""
    run = make_run(tunnel)
    image = make_image(run, "inv.jpg", (0.0, 0.06), (0.0, 0.04), (60, 40))
    inverted = np.full((40, 60), 255, np.uint8)
    inverted[10:12, :] = 0  # a black crack on white
    with pytest.raises(UploadError, match="marks 95% of the image as crack.*inverted"):
        annotations.upload_annotation(
            image=image, stream=io.BytesIO(_bytes(Image.fromarray(inverted), "PNG"))
        )
    assert not image.annotations.exists()
    right = annotations.upload_annotation(
        image=image, stream=io.BytesIO(_bytes(Image.fromarray(255 - inverted), "PNG"))
    )
    assert right.crack_pixels == 120
