"""Backup → restore into a fresh database and media folder (another process), counts compared."""

import hashlib
import os
import sqlite3
import subprocess
import sys
import urllib.parse
import uuid
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db import connection

from crackportal.inspections.tracking import track_run
from tests.conftest import ROOT, survey_jpeg
from tests.factories import make_crack, make_image, make_run


class FreshDatabase:
    """An empty database of the same engine as the tests use, dropped afterwards."""

    def __init__(self, tmp_path: Path):
        self.vendor = connection.vendor
        if self.vendor == "sqlite":
            self.path = tmp_path / "restored.sqlite3"
            self.url = f"sqlite:///{self.path}"
        else:
            self.name = f"crackportal_restore_{uuid.uuid4().hex[:8]}"
            self._admin("CREATE DATABASE {}")
            base = urllib.parse.urlsplit(os.environ["DATABASE_URL"])
            self.url = urllib.parse.urlunsplit(base._replace(path="/" + self.name))

    def _admin(self, sql: str) -> None:
        import psycopg

        settings = connection.settings_dict
        with psycopg.connect(
            host=settings["HOST"],
            port=settings["PORT"] or 5432,
            user=settings["USER"],
            password=settings["PASSWORD"],
            dbname="postgres",
            autocommit=True,
        ) as admin:
            admin.execute(sql.format(self.name))

    def count(self, table: str) -> int:
        if self.vendor == "sqlite":
            with sqlite3.connect(self.path) as db:
                return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        import psycopg

        with psycopg.connect(self.url) as db:
            return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    def drop(self) -> None:
        if self.vendor != "sqlite":
            self._admin("DROP DATABASE IF EXISTS {} WITH (FORCE)")


@pytest.fixture
def fresh_database(tmp_path):
    database = FreshDatabase(tmp_path)
    yield database
    database.drop()


def _restore(folder: Path, database_url: str, media_root: Path, extra_env: dict | None = None):
    env = os.environ | {
        "DATABASE_URL": database_url,
        "MEDIA_ROOT": str(media_root),
        "DJANGO_SETTINGS_MODULE": "crackportal.settings_test",
        **(extra_env or {}),
    }
    return subprocess.run(
        [sys.executable, "manage.py", "restore", str(folder)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_backup_restores_into_a_fresh_database_with_every_count_and_file(
    db, tunnel, inspector, settings, tmp_path, fresh_database
):
    settings.MEDIA_ROOT = tmp_path / "media"
    old, new = make_run(tunnel, "2025-05-01"), make_run(tunnel, "2026-05-01")
    originals = {}
    for run in (old, new):
        image = make_image(run, f"{run.date}.jpg")
        data = survey_jpeg(seed=run.pk)
        image.file.save(f"originals/{run.pk}.jpg", ContentFile(data))
        originals[image.file.name] = hashlib.sha256(data).hexdigest()
        make_crack(image, 0)
        make_crack(image, 1, start_m=(0.7, 0.1), end_m=(0.7, 0.4), orientation="transverse")
        track_run(run)

    folder = tmp_path / "backup-2026-11-26"
    call_command("backup", str(folder), verbosity=0)
    assert sorted(p.name for p in folder.iterdir()) == [
        "database.json.gz",
        "manifest.json",
        "media.tar",
    ]
    with pytest.raises(Exception, match="never overwrites"):
        call_command("backup", str(folder), verbosity=0)

    restored_media = tmp_path / "restored-media"
    result = _restore(folder, fresh_database.url, restored_media)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "restored and verified" in result.stdout

    # checked here, independently of the command's own comparison
    assert fresh_database.count("inspections_crack") == 4
    assert fresh_database.count("inspections_surveyimage") == 2
    assert fresh_database.count("inspections_cracktrack") == 2
    assert fresh_database.count("assets_tunnel") == 1
    assert fresh_database.count("auth_user") == 1
    for name, digest in originals.items():
        assert hashlib.sha256((restored_media / name).read_bytes()).hexdigest() == digest

    again = _restore(folder, fresh_database.url, tmp_path / "other-media")
    assert again.returncode != 0 and "not empty" in again.stderr  # never on top of live data


def test_restore_refuses_an_incomplete_backup(tmp_path, fresh_database):
    (tmp_path / "half").mkdir()
    result = _restore(tmp_path / "half", fresh_database.url, tmp_path / "m")
    assert result.returncode != 0 and "not a complete backup" in result.stderr
