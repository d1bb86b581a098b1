"""Restore a backup folder into a fresh database and media folder, then check every count."""

import json
import tarfile
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from crackportal.inspections.management.commands.backup import FORMAT, count_rows, media_files


class Command(BaseCommand):
    help = (
        "Restore a folder written by `manage.py backup` into the configured database "
        "(DATABASE_URL; migrated here) and media storage (MEDIA_ROOT or the S3 bucket), both of "
        "which must be empty, then "
        "compare the row count of every table and the number of media files with the backup."
    )

    def add_arguments(self, parser):
        parser.add_argument("folder", type=Path)

    def handle(self, *args, folder: Path, **options):
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
        except (OSError, ValueError) as exc:
            raise CommandError(f"{folder} is not a complete backup ({exc})") from None
        if manifest.get("format") != FORMAT:
            raise CommandError(f"unknown backup format {manifest.get('format')!r}")

        call_command("migrate", interactive=False, verbosity=0)
        if any(count_rows().values()):
            raise CommandError("the database is not empty; restore into a fresh database")
        where = "the S3 bucket" if settings.MEDIA_STORAGE == "s3" else str(settings.MEDIA_ROOT)
        if media_files():
            raise CommandError(f"{where} is not empty; restore into empty media storage")

        self.stdout.write("database…")
        with transaction.atomic():  # all rows or none
            call_command("loaddata", str(folder / "database.json.gz"), verbosity=0)
        self.stdout.write("media…")
        with tarfile.open(folder / "media.tar") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                name = PurePosixPath(member.name)
                if name.is_absolute() or ".." in name.parts:
                    raise CommandError(f"unsafe name in the backup: {member.name!r}")
                saved = default_storage.save(member.name, File(tar.extractfile(member)))
                if saved != member.name:
                    raise CommandError(f"{member.name} was stored as {saved}")

        rows, expected = count_rows(), manifest["rows"]
        problems = [
            f"{label}: {rows.get(label, 0)} rows, the backup has {n}"
            for label, n in expected.items()
            if rows.get(label, 0) != n
        ]
        restored_files = len(media_files())
        if restored_files != manifest["media_files"]:
            problems.append(
                f"media: {restored_files} files, the backup has {manifest['media_files']}"
            )
        if problems:
            raise CommandError("restore does not match the backup:\n  " + "\n  ".join(problems))
        self.stdout.write(
            self.style.SUCCESS(
                f"restored and verified: {sum(rows.values())} rows in {len(rows)} tables and "
                f"{restored_files} media files match the backup of {manifest['created']}"
            )
        )
