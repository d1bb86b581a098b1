"""Checks on uploaded files, zips and manifests (no worker needed)."""

import io
import zipfile

import pytest
from PIL import Image

from crackportal.inspections.uploads import (
    IncomingFile,
    UploadError,
    check_image,
    expand_zip,
    parse_manifest,
    safe_member_name,
)
from tests.conftest import survey_jpeg

MB = 1024 * 1024


def incoming(name, data: bytes) -> IncomingFile:
    return IncomingFile(name, io.BytesIO(data), len(data))


def test_good_jpeg_is_accepted_with_size_and_hash():
    checked = check_image(incoming("a.jpg", survey_jpeg(1)), 10 * MB, 10**8)
    assert (checked.width, checked.height) == (480, 320)
    assert len(checked.sha256) == 64


@pytest.mark.parametrize(
    "name, data, reason",
    [
        ("notes.txt", b"hello", "not an accepted image type"),
        ("fake.jpg", b"this is not a jpeg at all" * 10, "not a readable image"),
        ("empty.png", b"", "empty"),
    ],
)
def test_bad_files_are_refused_with_a_reason(name, data, reason):
    with pytest.raises(UploadError, match=reason):
        check_image(incoming(name, data), 10 * MB, 10**8)


def test_truncated_jpeg_is_refused():
    with pytest.raises(UploadError, match="corrupt or truncated"):
        check_image(incoming("cut.jpg", survey_jpeg(2)[:4000]), 10 * MB, 10**8)


def test_file_over_the_byte_limit_is_refused():
    with pytest.raises(UploadError, match="limit is"):
        check_image(incoming("big.jpg", survey_jpeg(3)), 1000, 10**8)


def test_image_over_the_pixel_limit_is_refused_before_decoding():
    buffer = io.BytesIO()
    Image.new("L", (4000, 4000)).save(buffer, format="PNG")
    with pytest.raises(UploadError, match="megapixels"):
        check_image(incoming("huge.png", buffer.getvalue()), 10 * MB, 1_000_000)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("a.jpg", "a.jpg"),
        ("survey/day1/b.png", "b.png"),
        ("../evil.jpg", None),
        ("/etc/passwd", None),
        ("dir/", None),
        (".hidden.jpg", None),
        ("__MACOSX/a.jpg", None),
        ("..\\win.jpg", None),
    ],
)
def test_zip_member_names_are_made_safe(name, expected):
    assert safe_member_name(name) == expected


def test_zip_expands_images_and_manifest_and_reports_unsafe_members():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("survey/a.jpg", survey_jpeg(4))
        archive.writestr(
            "manifest.csv", "filename,chainage_start_m,chainage_end_m,arc_start_m,arc_end_m\n"
        )
        archive.writestr("../escape.jpg", b"x")
    buffer.seek(0)
    contents = expand_zip(buffer, 10 * MB, 100 * MB)
    assert [f.name for f in contents.files] == ["a.jpg"]
    assert contents.manifest is not None
    assert contents.problems and "unsafe" in contents.problems[0][1]


def test_non_zip_is_refused():
    with pytest.raises(UploadError, match="zip"):
        expand_zip(io.BytesIO(b"not a zip"), MB, MB)


def test_manifest_parses_footprints():
    fp = parse_manifest(
        b"filename,chainage_start_m,chainage_end_m,arc_start_m,arc_end_m,mm_per_px\n"
        b"a.jpg,1,2,0,0.5,0.4\nb.jpg,2,3,0,0.5,\n"
    )
    assert fp["a.jpg"].chainage_end_m == 2 and fp["a.jpg"].mm_per_px == 0.4
    assert fp["b.jpg"].mm_per_px is None


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"filename,chainage_start_m\na.jpg,1\n", "lacks column"),
        (
            b"filename,chainage_start_m,chainage_end_m,arc_start_m,arc_end_m\na.jpg,x,2,0,1\n",
            "not a number",
        ),
        (
            b"filename,chainage_start_m,chainage_end_m,arc_start_m,arc_end_m\na.jpg,3,2,0,1\n",
            "greater than",
        ),
        (
            b"filename,chainage_start_m,chainage_end_m,arc_start_m,arc_end_m\n\xff\xfe,1,2,0,1\n",
            "UTF-8",
        ),
        (
            b"filename,chainage_start_m,chainage_end_m,arc_start_m,arc_end_m\na.jpg,1,2,0,1\na.jpg,2,3,0,1\n",
            "twice",
        ),
    ],
)
def test_broken_manifests_are_refused_with_the_line(data, reason):
    with pytest.raises(UploadError, match=reason):
        parse_manifest(data)
