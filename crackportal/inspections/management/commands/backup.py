"""Back up the database and the media files into one new folder (works on PostgreSQL and SQLite)."""

import json
import tarfile
from pathlib import Path

from django.apps import apps
from django.conf import settings
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


def media_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


class Command(BaseCommand):
    help = (
        "Write a backup folder: database.json.gz (every table as Django fixtures), media.tar "
        "(uploaded originals, masks, overlays, pyramids, reports) and manifest.json with the "
        "row and file counts that `manage.py restore` checks."
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
        media_root = Path(settings.MEDIA_ROOT)
        files = media_files(media_root)
        self.stdout.write(f"media: {len(files)} files…")
        with tarfile.open(partial / "media.tar", "w") as tar:
            for path in files:
                tar.add(path, arcname=str(path.relative_to(media_root)), recursive=False)
        manifest = {
            "format": FORMAT,
            "created": timezone.now().isoformat(),
            "database_engine": connection.vendor,
            "rows": counts,
            "media_files": len(files),
            "media_bytes": sum(p.stat().st_size for p in files),
        }
        (partial / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        partial.rename(folder)  # only a complete backup carries the final name
        self.stdout.write(
            self.style.SUCCESS(
                f"backup written to {folder}: {sum(counts.values())} rows in {len(counts)} tables, "
                f"{len(files)} media files"
            )
        )
