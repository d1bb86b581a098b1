"""Stored files through Django's storage API only: the filesystem under MEDIA_ROOT by default,
S3-compatible object storage with MEDIA_STORAGE=s3 (settings.py). Web and workers never assume
a local path, so a worker on another host reads and writes the same files.

Folders are name prefixes ("pyramids/42/"); these helpers walk, replace and delete them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from django.core.files import File
from django.core.files.storage import default_storage


def walk(prefix: str = "", storage=None) -> Iterator[str]:
    """Every stored file name under prefix (recursively), sorted."""
    storage = storage or default_storage
    prefix = prefix.strip("/")
    try:
        folders, files = storage.listdir(prefix)
    except FileNotFoundError:
        return
    join = (lambda name: f"{prefix}/{name}") if prefix else (lambda name: name)
    for name in sorted(files):
        yield join(name)
    for folder in sorted(folders):
        yield from walk(join(folder), storage)


def delete_tree(prefix: str, storage=None) -> int:
    """Delete every file under prefix; returns how many."""
    storage = storage or default_storage
    names = list(walk(prefix, storage))
    for name in names:
        storage.delete(name)
    return len(names)


def publish_tree(local_dir: Path, prefix: str, storage=None, *, only_its_entries=False) -> int:
    """Replace the stored folder prefix by the files of local_dir (same relative names); with
    only_its_entries, replace just the files and folders local_dir has at its top, keeping
    the rest of prefix (one pyramid of several in a folder)."""
    storage = storage or default_storage
    local_dir = Path(local_dir)
    if not only_its_entries:
        delete_tree(prefix, storage)
    else:
        for entry in local_dir.iterdir():
            name = f"{prefix.strip('/')}/{entry.name}"
            if entry.is_dir():
                delete_tree(name, storage)
            elif storage.exists(name):
                storage.delete(name)
    count = 0
    for root, _, files in os.walk(local_dir):
        for filename in sorted(files):
            path = Path(root) / filename
            name = f"{prefix.strip('/')}/{path.relative_to(local_dir).as_posix()}"
            with open(path, "rb") as fh:
                saved = storage.save(name, File(fh))
            if saved != name:  # a storage that renames instead of replacing
                raise OSError(f"storage kept {name} as {saved}")
            count += 1
    return count


def presigned_redirect(field_file, filename: str | None = None):
    """With MEDIA_DOWNLOADS=presigned and object storage: a redirect to the file's short-lived
    signed URL (the permission check is the caller's); None otherwise (stream it)."""
    from django.conf import settings
    from django.http import HttpResponseRedirect

    if settings.MEDIA_DOWNLOADS != "presigned" or settings.MEDIA_STORAGE != "s3":
        return None
    parameters = {}
    if filename:
        parameters["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
    return HttpResponseRedirect(field_file.storage.url(field_file.name, parameters=parameters))


def local_copy(prefix: str, target: Path, storage=None) -> Path:
    """The stored folder prefix copied to the local folder target once (all files or none:
    written beside it, then renamed into place); returns target."""
    import shutil
    import tempfile

    storage = storage or default_storage
    target = Path(target)
    if target.is_dir():
        return target
    names = list(walk(prefix, storage))
    if not names:
        raise FileNotFoundError(f"nothing stored under {prefix}")
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        for name in names:
            path = scratch / name[len(prefix.strip("/")) + 1 :]
            path.parent.mkdir(parents=True, exist_ok=True)
            with storage.open(name, "rb") as src, open(path, "wb") as dst:
                shutil.copyfileobj(src, dst)
        try:
            scratch.rename(target)
        except OSError:  # another process put its copy in place first
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target
