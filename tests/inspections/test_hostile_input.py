"""Hostile and broken uploads through the real upload page: each gets a clear reason, the good
files of the same upload go through, and nothing is written outside MEDIA_ROOT."""

import csv
import io
import stat
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from crackportal.inspections.models import InspectionRun
from crackportal.reports import exports
from tests.conftest import survey_jpeg
from tests.factories import make_crack, make_image, make_run


def _zip(members) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            if name.startswith("symlink:"):
                info = zipfile.ZipInfo(name.removeprefix("symlink:"))
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                archive.writestr(info, data)
            else:
                archive.writestr(name, data)
    return buffer.getvalue()


def _png(size) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", size).save(buffer, format="PNG")
    return buffer.getvalue()


def _files_under(folder: Path) -> set[str]:
    return {p.name for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def test_a_hostile_upload_keeps_the_good_files_and_says_why_for_the_rest(
    client, inspector, tunnel, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "deep" / "media"
    settings.MAX_IMAGE_PIXELS = 2_000_000
    client.force_login(inspector)
    hostile_zip = _zip(
        [
            ("survey/inzip.jpg", survey_jpeg(seed=2)),
            ("../../outside.jpg", survey_jpeg(seed=3)),
            ("/etc/absolute.jpg", survey_jpeg(seed=4)),
            ("symlink:link.jpg", "/etc/passwd"),
            ("bomb.bmp", bytes(60 * 1024 * 1024)),  # 60 MB of zeros packs into ~60 KB
        ]
    )
    files = [
        SimpleUploadedFile("good.jpg", survey_jpeg(seed=1), "image/jpeg"),
        SimpleUploadedFile("../../escape.jpg", survey_jpeg(seed=5), "image/jpeg"),
        SimpleUploadedFile("fake.jpg", b"MZ\x90\x00 this is an executable" * 50, "image/jpeg"),
        SimpleUploadedFile("cut.jpg", survey_jpeg(seed=6)[:3000], "image/jpeg"),
        SimpleUploadedFile("empty.png", b"", "image/png"),
        SimpleUploadedFile("huge.png", _png((2000, 2000)), "image/png"),  # 4 MP > the 2 MP limit
        SimpleUploadedFile(
            "notes.docx", b"PK\x03\x04 not a survey image", "application/octet-stream"
        ),
        SimpleUploadedFile("survey.zip", hostile_zip, "application/zip"),
        SimpleUploadedFile("broken.zip", b"PK\x03\x04 truncated archive", "application/zip"),
    ]
    response = client.post(
        reverse("run-create", args=[tunnel.code]),
        {"date": "2026-11-01", "label": "hostile", "files": files},
    )
    assert response.status_code == 302
    run = InspectionRun.objects.get(label="hostile")

    stored = {i.original_name: i for i in run.images.exclude(file="")}
    assert set(stored) == {"good.jpg", "escape.jpg", "inzip.jpg"}
    media = Path(settings.MEDIA_ROOT).resolve()
    for image in stored.values():
        assert Path(image.file.path).resolve().is_relative_to(media)
        assert image.status == "pending"  # committed, waiting for its task
    # nothing landed beside or above MEDIA_ROOT
    assert _files_under(tmp_path / "deep") - _files_under(media) == set()

    failed = dict(run.images.filter(status="failed").values_list("original_name", "error"))
    expected = {
        "fake.jpg": "not a readable image",
        "cut.jpg": "corrupt or truncated",
        "empty.png": "empty",
        "huge.png": "megapixels",
        "notes.docx": "not an accepted image type",
        "broken.zip": "not a readable zip",
        "survey.zip: ../../outside.jpg": "unsafe",
        "survey.zip: /etc/absolute.jpg": "unsafe",
        "survey.zip: link.jpg": "unsafe",
        "survey.zip: bomb.bmp": "zip bomb",
    }
    assert set(failed) == set(expected)
    for name, reason in expected.items():
        assert reason in failed[name], (name, failed[name])

    page = client.get(reverse("run-detail", args=[run.pk])).content.decode()
    assert "zip bomb" in page and "not a readable image" in page  # listed with reasons


def test_an_oversized_request_is_refused_before_it_is_read(client, inspector, tunnel, settings):
    settings.MAX_UPLOAD_BYTES = 50_000
    client.force_login(inspector)
    response = client.post(
        reverse("run-create", args=[tunnel.code]),
        {
            "date": "2026-11-01",
            "label": "too big",
            "files": [
                SimpleUploadedFile(f"{i}.jpg", survey_jpeg(seed=i), "image/jpeg") for i in range(6)
            ],
        },
    )
    assert response.status_code == 413
    assert b"at most" in response.content
    assert not InspectionRun.objects.filter(label="too big").exists()

    api = client.post(
        "/api/runs/1/images/",
        data=b"x" * 60_000,
        content_type="application/octet-stream",
    )
    assert api.status_code == 413 and "at most" in api.json()["detail"]


@pytest.mark.parametrize(
    "manifest, reason",
    [
        (b"filename,chainage_start_m\na.jpg,1\n", "lacks column"),
        (
            b"filename,chainage_start_m,chainage_end_m,arc_start_m,arc_end_m\na.jpg,one,2,0,1\n",
            "is not a number",
        ),
        ("filename,chainage_start_m\nä.jpg,1\n".encode("latin-1"), "not UTF-8"),
    ],
)
def test_a_broken_manifest_refuses_the_upload_with_the_reason_and_stores_nothing(
    client, inspector, tunnel, manifest, reason
):
    client.force_login(inspector)
    response = client.post(
        reverse("run-create", args=[tunnel.code]),
        {
            "date": "2026-11-01",
            "label": "bad manifest",
            "files": [SimpleUploadedFile("a.jpg", survey_jpeg(seed=1), "image/jpeg")],
            "manifest": SimpleUploadedFile("m.csv", manifest, "text/csv"),
        },
    )
    assert response.status_code == 200
    assert reason in response.content.decode()
    assert not InspectionRun.objects.filter(label="bad manifest").exists()


def test_unknown_manifest_filenames_are_a_warning_not_a_failure(client, inspector, tunnel):
    client.force_login(inspector)
    manifest = (
        "filename,chainage_start_m,chainage_end_m,arc_start_m,arc_end_m\n"
        "a.jpg,1,1.2,0,0.1\nghost.jpg,2,2.2,0,0.1\n"
    )
    response = client.post(
        reverse("run-create", args=[tunnel.code]),
        {
            "date": "2026-11-01",
            "label": "ghost",
            "files": [SimpleUploadedFile("a.jpg", survey_jpeg(seed=1), "image/jpeg")],
            "manifest": SimpleUploadedFile("m.csv", manifest.encode(), "text/csv"),
        },
        follow=True,
    )
    assert "ghost.jpg" in response.content.decode()
    image = InspectionRun.objects.get(label="ghost").images.get()
    assert image.chainage_start_m == 1.0


def test_exports_defuse_formula_injection(db, tunnel):
    tunnel.name = '=HYPERLINK("http://evil","x")'
    tunnel.save()
    run = make_run(tunnel, label="@SUM(1+1)")
    make_crack(make_image(run, name="=cmd|' /C calc'!A0.jpg"))
    rows = list(csv.DictReader(io.StringIO("".join(exports.csv_lines(run)))))
    assert rows[0]["image"] == "'=cmd|' /C calc'!A0.jpg"
    assert float(rows[0]["length_mm"]) > 0  # numbers untouched

    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(exports.xlsx_bytes(run)))
    cells = [c.value for row in book["Cracks"].iter_rows() for c in row] + [
        c.value for row in book["Summary"].iter_rows() for c in row
    ]
    texts = [v for v in cells if isinstance(v, str)]
    assert not any(t.startswith(("=", "+", "@")) for t in texts), texts
    assert "'=cmd|' /C calc'!A0.jpg" in texts and "'@SUM(1+1)" in texts
