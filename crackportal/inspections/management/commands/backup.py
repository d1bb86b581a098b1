"""Back up the database and the media files into one new folder (works on PostgreSQL and SQLite)."""

import json
import tarfile
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

# Rebuilt by `migrate` (content types, permissions) or not worth keeping (sessions, login attempts).
EXCLUDED = ["contenttypes", "auth.permission", "sessions", "axes"]
FORMAT = 1


def backed_up_models():
    """The models a backup holds, as (label, model)."""
    for model in apps.get_models():
        label = model._meta.label_lower
        if model._meta.app_label in EXCLUDED or label in EXCLUDED:
            continue
        if model._meta.proxy or not model._meta.managed:
            continue
        yield label, model


def count_rows() -> dict[str, int]:
    return {label: model._base_manager.count() for label, model in backed_up_models()}


def media_files() -> list[str]:
    """Every stored file's name (filesystem or object storage; crackportal/media.py)."""
    from crackportal import media

    return list(media.walk())


class Command(BaseCommand):
    help = (
        "Write a backup folder: database.json.gz (every table as Django fixtures), media.tar "
        "(uploaded originals, masks, overlays, pyramids, reports: every stored file, from the "
        "filesystem or the S3 bucket) and manifest.json with the row and file counts that "
        "`manage.py restore` checks."
    )

    def add_arguments(self, parser):
        parser.add_argument("folder", type=Path, help="a new folder (refused if it exists)")

    def handle(self, *args, folder: Path, **options):
        if folder.exists():
            raise CommandError(f"{folder} exists; a backup never overwrites another")
        partial = folder.with_name(folder.name + ".partial")
        if partial.exists():
            raise CommandError(f"{partial} exists: an interrupted backup? Remove it first")
        partial.mkdir(parents=True)

        self.stdout.write("database…")
        counts = count_rows()
        call_command(
            "dumpdata",
            *[label for label, _ in backed_up_models()],
            natural_foreign=True,
            natural_primary=True,
            output=str(partial / "database.json.gz"),
            verbosity=0,
        )
        files = media_files()
        self.stdout.write(f"media: {len(files)} files…")
        total_bytes = 0
        mtime = int(timezone.now().timestamp())
        with tarfile.open(partial / "media.tar", "w") as tar:
            for name in files:  # streamed: a 200 MB original never sits in memory whole
                info = tarfile.TarInfo(name)
                info.mtime = mtime
                with default_storage.open(name, "rb") as fh:
                    info.size = fh.size  # known once opened: no second request to the storage
                    tar.addfile(info, fh)
                total_bytes += info.size
        manifest = {
            "format": FORMAT,
            "created": timezone.now().isoformat(),
            "database_engine": connection.vendor,
            "rows": counts,
            "media_files": len(files),
            "media_bytes": total_bytes,
            "media_storage": settings.MEDIA_STORAGE,
        }
        (partial / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        partial.rename(folder)  # only a complete backup carries the final name
        self.stdout.write(
            self.style.SUCCESS(
                f"backup written to {folder}: {sum(counts.values())} rows in {len(counts)} tables, "
                f"{len(files)} media files"
            )
        )
