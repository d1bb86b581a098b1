"""Checks on uploaded survey files: image validation, zip expansion and the CSV manifest.

Everything here works on file objects and plain values; storing is the services' job.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from PIL import Image, UnidentifiedImageError

from crackportal.inspections.imaging import upright_size

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"}
MANIFEST_COLUMNS = [
    "filename",
    "chainage_start_m",
    "chainage_end_m",
    "arc_start_m",
    "arc_end_m",
    "mm_per_px",
]
_CHUNK = 1024 * 1024


class UploadError(ValueError):
    """A file or manifest that cannot be accepted; the message is shown to the user."""


@dataclass
class IncomingFile:
    """One file of an upload: its name and a readable, seekable binary stream."""

    name: str
    stream: object
    size: int

    @classmethod
    def from_upload(cls, uploaded) -> IncomingFile:
        """From a Django UploadedFile (a form field or request.FILES, pages and API alike)."""
        return cls(uploaded.name, uploaded.file, uploaded.size)


@dataclass
class CheckedImage:
    """An image that opened and decoded fully."""

    sha256: str
    width: int
    height: int
    size_bytes: int


def _megabytes(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def check_image(incoming: IncomingFile, max_bytes: int, max_pixels: int) -> CheckedImage:
    """Validate a survey image; raise UploadError with a readable reason."""
    suffix = PurePosixPath(incoming.name).suffix.lower()
    if suffix not in IMAGE_EXTENSIONS:
        raise UploadError(
            f"not an accepted image type ({suffix or 'no extension'}); use JPEG, PNG, TIFF or BMP"
        )
    if incoming.size == 0:
        raise UploadError("the file is empty (0 bytes)")
    if incoming.size > max_bytes:
        raise UploadError(
            f"the file is {_megabytes(incoming.size)}; the limit is {_megabytes(max_bytes)}"
        )
    digest = hashlib.sha256()
    incoming.stream.seek(0)
    for chunk in iter(lambda: incoming.stream.read(_CHUNK), b""):
        digest.update(chunk)
    incoming.stream.seek(0)
    try:
        with Image.open(incoming.stream) as im:
            width, height = upright_size(im)  # as shown: EXIF orientation applied
            if width * height > max_pixels:
                raise UploadError(
                    f"the image is {width}×{height} = {width * height / 1e6:.0f} megapixels; "
                    f"the limit is {max_pixels / 1e6:.0f} megapixels"
                )
            if im.format == "JPEG":
                # every block's data is still read and entropy-decoded (truncated or corrupt
                # data fails), but the DCT is scaled to 1/8: a fifth of the time
                im.draft(im.mode, (im.width // 8, im.height // 8))
            im.load()  # decodes every pixel: catches truncated and corrupt data
    except UploadError:
        raise
    except Image.DecompressionBombError as exc:
        raise UploadError(f"the image is too large to decode safely ({exc})") from None
    except UnidentifiedImageError:
        raise UploadError(
            "not a readable image (the content is not JPEG, PNG, TIFF or BMP data)"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UploadError(f"the image is corrupt or truncated ({exc})") from None
    finally:
        incoming.stream.seek(0)
    return CheckedImage(digest.hexdigest(), width, height, incoming.size)


# bidirectional overrides and isolates: they make "gpj.exe" read as "exe.jpg"
_INVISIBLE = dict.fromkeys(
    [*range(0x00, 0x20), 0x7F, *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F]
)
MAX_NAME_CHARS = 120  # shown and stored names: room in a 255-byte file name and the columns


def clean_file_name(name: str, max_chars: int = MAX_NAME_CHARS) -> str:
    """A file's base name as shown and stored (see clean_text): the folders dropped."""
    return clean_text(PurePosixPath(name.replace("\\", "/")).name, max_chars)


def clean_text(name: str, max_chars: int = MAX_NAME_CHARS) -> str:
    """A name as shown: NFC, no control or direction characters, shortened.

    A long name keeps its start and its extension ("very-long…name.jpg"): the file system
    allows 255 bytes per name, and "ü" is two of them.
    """
    name = unicodedata.normalize("NFC", name).translate(_INVISIBLE).strip() or "unnamed"
    if len(name) <= max_chars:
        return name
    stem, dot, ext = name.rpartition(".")
    ext = dot + ext if dot and len(ext) <= 10 else ""
    stem = name[: len(name) - len(ext)] if ext else name
    return stem[: max_chars - len(ext) - 1] + "…" + ext


def safe_member_name(name: str) -> str | None:
    """The base name of a zip member, or None for folders, hidden files and unsafe paths."""
    path = PurePosixPath(name.replace("\\", "/"))
    if name.endswith("/") or not path.name or path.name.startswith("."):
        return None
    if path.is_absolute() or ".." in path.parts or "__MACOSX" in path.parts:
        return None
    return clean_file_name(path.name)


@dataclass
class ZipContents:
    files: list[IncomingFile] = field(default_factory=list)
    manifest: IncomingFile | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)  # (member name, reason)


MAX_ZIP_MEMBERS = 20_000
# Photos barely compress (JPEG, PNG are compressed already); a member that unpacks to
# hundreds of times its packed size is a zip bomb, not a survey image.
MAX_COMPRESSION_RATIO = 100


def expand_zip(stream, max_member_bytes: int, max_total_bytes: int) -> ZipContents:
    """Members of a survey zip as spooled files; unsafe or oversized members are reported.

    Never extracts to a path: each member is read into a temporary file under its base name,
    so `../`, absolute paths and symlinks cannot write anywhere. Sizes are checked against
    the bytes actually unpacked, not only the headers, which a zip bomb may fake.
    """
    out = ZipContents()
    try:
        archive = zipfile.ZipFile(stream)
    except zipfile.BadZipFile:
        raise UploadError("not a readable zip archive") from None
    members = archive.infolist()
    if len(members) > MAX_ZIP_MEMBERS:
        raise UploadError(
            f"the zip holds {len(members)} entries; the limit is {MAX_ZIP_MEMBERS} per archive"
        )
    total = 0
    for info in members:
        if info.is_dir():
            continue
        name = safe_member_name(info.filename)
        is_symlink = (info.external_attr >> 16) & 0o170000 == 0o120000
        if name is None or is_symlink:
            out.problems.append((info.filename, "unsafe or hidden path inside the zip; skipped"))
            continue
        if info.file_size > 1024 * 1024 and info.file_size > MAX_COMPRESSION_RATIO * max(
            info.compress_size, 1
        ):
            out.problems.append(
                (
                    name,
                    f"unpacks to {info.file_size // max(info.compress_size, 1)}× its packed size "
                    "(a zip bomb?); skipped",
                )
            )
            continue
        if info.file_size > max_member_bytes:
            out.problems.append(
                (
                    name,
                    f"{_megabytes(info.file_size)} unpacked; the limit is {_megabytes(max_member_bytes)}",
                )
            )
            continue
        total += info.file_size
        if total > max_total_bytes:
            out.problems.append(
                (name, "the zip unpacks to more than the upload limit; the rest was skipped")
            )
            break
        spooled = tempfile.SpooledTemporaryFile(max_size=8 * _CHUNK)
        written = 0
        try:
            with archive.open(info) as member:
                for chunk in iter(lambda: member.read(_CHUNK), b""):
                    written += len(chunk)
                    if written > max_member_bytes:  # the header lied about the size
                        raise UploadError("unpacks to more than the file size limit")
                    if written > MAX_COMPRESSION_RATIO * max(info.compress_size, 1) + _CHUNK:
                        raise UploadError("unpacks to far more than its packed size (a zip bomb?)")
                    spooled.write(chunk)
        except (UploadError, zipfile.BadZipFile, OSError, EOFError) as exc:
            spooled.close()
            out.problems.append((name, f"could not be unpacked ({exc})"))
            continue
        spooled.seek(0)
        incoming = IncomingFile(name, spooled, written)
        if name.lower().endswith(".csv"):
            out.manifest = incoming
        else:
            out.files.append(incoming)
    return out


MAX_CHAINAGE_M = 1_000_000.0  # a 1000-km tunnel
MAX_ARC_M = 1_000.0
MIN_MM_PER_PX, MAX_MM_PER_PX = 0.001, 1000.0


@dataclass
class Footprint:
    """Where an image lies on the unrolled lining, and its scale."""

    chainage_start_m: float
    chainage_end_m: float
    arc_start_m: float
    arc_end_m: float
    mm_per_px: float | None = None

    def check(self, where: str = "footprint") -> None:
        """Refuse what no survey can be: non-finite, reversed or absurd figures (UploadError)."""
        values = [self.chainage_start_m, self.chainage_end_m, self.arc_start_m, self.arc_end_m]
        if self.mm_per_px is not None:
            values.append(self.mm_per_px)
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
            raise UploadError(f"{where}: every figure must be a finite number")
        if self.chainage_end_m <= self.chainage_start_m or self.arc_end_m <= self.arc_start_m:
            raise UploadError(f"{where}: each end must be greater than its start")
        if not (-MAX_CHAINAGE_M <= self.chainage_start_m and self.chainage_end_m <= MAX_CHAINAGE_M):
            raise UploadError(f"{where}: chainage must lie within ±{MAX_CHAINAGE_M:,.0f} m")
        if not (-MAX_ARC_M <= self.arc_start_m and self.arc_end_m <= MAX_ARC_M):
            raise UploadError(f"{where}: arc must lie within ±{MAX_ARC_M:,.0f} m")
        if self.mm_per_px is not None and not (MIN_MM_PER_PX <= self.mm_per_px <= MAX_MM_PER_PX):
            raise UploadError(
                f"{where}: mm_per_px must be between {MIN_MM_PER_PX} and {MAX_MM_PER_PX}"
            )


def _number(row: dict, column: str, line: int) -> float:
    raw = (row.get(column) or "").strip()
    try:
        value = float(raw)
    except ValueError:
        raise UploadError(f"manifest line {line}: {column} {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise UploadError(f"manifest line {line}: {column} {raw!r} is not a finite number")
    return value


def parse_manifest(data: bytes) -> dict[str, Footprint]:
    """CSV manifest → footprint per file name; raise UploadError listing what is wrong."""
    try:
        return _parse_manifest(data)
    except csv.Error as exc:  # e.g. a field over the csv module's 131,072-character limit
        raise UploadError(f"the manifest is not a readable CSV ({exc})") from None


def _parse_manifest(data: bytes) -> dict[str, Footprint]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UploadError("the manifest is not UTF-8 text; save it as CSV UTF-8") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    missing = [c for c in MANIFEST_COLUMNS if c not in header and c != "mm_per_px"]
    if missing:
        raise UploadError(
            f"the manifest lacks column(s) {', '.join(missing)}; expected {', '.join(MANIFEST_COLUMNS)}"
        )
    footprints: dict[str, Footprint] = {}
    errors = []
    for line, row in enumerate(reader, start=2):
        name = (row.get("filename") or "").strip()
        if not name:
            errors.append(f"manifest line {line}: empty filename")
            continue
        try:
            fp = Footprint(*(_number(row, c, line) for c in MANIFEST_COLUMNS[1:5]))
            if (row.get("mm_per_px") or "").strip():
                fp.mm_per_px = _number(row, "mm_per_px", line)
                if fp.mm_per_px <= 0:
                    raise UploadError(f"manifest line {line}: mm_per_px must be positive")
            fp.check(f"manifest line {line}")
        except UploadError as exc:
            errors.append(str(exc))
            continue
        if PurePosixPath(name).name in footprints:
            errors.append(f"manifest line {line}: {name} is listed twice")
            continue
        footprints[PurePosixPath(name).name] = fp
    if errors:
        shown = "; ".join(errors[:10]) + (
            f"; and {len(errors) - 10} more" if len(errors) > 10 else ""
        )
        raise UploadError(shown)
    return footprints
