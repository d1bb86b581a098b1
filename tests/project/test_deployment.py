"""docker-compose.yml and settings wiring (no Docker engine needed)."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_web_workers_and_services_with_volumes():
    compose = _compose()
    services = compose["services"]
    assert {"proxy", "web", "worker", "training-worker", "beat", "postgres", "redis"} <= set(
        services
    )
    # only the proxy is published: gunicorn's sync workers never face clients directly
    assert "ports" in services["proxy"] and "ports" not in services["web"]
    assert services["proxy"]["build"] == "deploy/nginx"
    assert "maintenance" in services["worker"]["command"]  # the sweeper's queue
    assert "celery -A crackportal beat" in services["beat"]["command"]
    assert "gunicorn" in services["web"]["command"]
    assert "-Q inference" in services["worker"]["command"]
    assert "-Q training" in services["training-worker"]["command"]
    assert {"objects", "pgdata", "trained-models"} <= set(compose["volumes"])
    assert "media" not in compose["volumes"]  # no host shares a media folder: MinIO holds files


def test_compose_stores_files_in_minio():
    compose = _compose()
    services = compose["services"]
    assert {"minio", "minio-bucket"} <= set(services)
    env = services["web"]["environment"]
    assert env["MEDIA_STORAGE"] == "s3" and env["S3_ENDPOINT_URL"] == "http://minio:9000"
    for name in ("web", "worker", "beat", "training-worker"):
        assert services[name]["environment"]["S3_BUCKET"] == env["S3_BUCKET"]
        assert "minio-bucket" in services[name]["depends_on"]
    assert "mc mb --ignore-existing local/crackportal" in services["minio-bucket"]["entrypoint"]


def test_compose_environment_matches_what_settings_read():
    env = _compose()["services"]["web"]["environment"]
    settings_source = (ROOT / "crackportal" / "settings.py").read_text()
    for name in ("DATABASE_URL", "REDIS_URL", "MEDIA_ROOT", "MODEL_DIR", "SECRET_KEY", "DEBUG"):
        assert name in env
        assert f'"{name}"' in settings_source
    assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:" in env["DATABASE_URL"]
    assert env["REDIS_URL"].startswith("redis://redis:")


def _settings_probe(extra_env: dict, code: str = "") -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL")
        and not k.startswith("DATASET")
    }
    env.update(
        extra_env,
        DJANGO_SETTINGS_MODULE="crackportal.settings",
        VAR_DIR=str(ROOT / "var" / "test" / "probe"),
    )
    code = code or (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.DEBUG, s.SESSION_COOKIE_SECURE)"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_embedded_default_is_sqlite_and_filesystem_broker():
    out = _settings_probe({"DEBUG": "1"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:3] == ["django.db.backends.sqlite3", "filesystem://", "True"]


def test_service_urls_switch_to_postgres_and_redis_with_secure_cookies():
    out = _settings_probe(
        {
            "SECRET_KEY": "x" * 50,
            "DATABASE_URL": "postgres://u@db:5432/cp",
            "REDIS_URL": "redis://r:6379/0",
        }
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [
        "django.db.backends.postgresql",
        "redis://r:6379/0",
        "False",
        "True",
    ]


def test_every_dataset_folder_with_a_train_split_is_a_base_dataset(tmp_path):
    """The portal knew cfd and deepcrack alone: an adaptation rehearsed and was judged on two
    of the default model's five surfaces. It takes every folder with a train split now."""
    for name in ("cfd", "masonry", "tunnel-lining"):
        (tmp_path / name / "train").mkdir(parents=True)
    (tmp_path / "notes").mkdir()  # no train split: not a dataset
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(sorted(s.TRAINING_DATASETS.items()))"
    )
    found = _settings_probe({"DEBUG": "1", "DATASETS_DIR": str(tmp_path)}, code)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == str(
        [(n, str(tmp_path / n)) for n in ("cfd", "masonry", "tunnel-lining")]
    )
    extra = _settings_probe(
        {"DEBUG": "1", "DATASETS_DIR": str(tmp_path / "none"), "DATASET_CONCRETE_UAV": "/d/uav"},
        code,
    )
    assert extra.stdout.strip() == str([("concrete-uav", "/d/uav")])


def test_production_refuses_to_start_without_a_secret_key():
    out = _settings_probe({"DEBUG": "0"})
    assert out.returncode != 0 and "SECRET_KEY" in out.stderr


def test_bad_boolean_fails_at_start_up():
    out = _settings_probe({"DEBUG": "maybe"})
    assert out.returncode != 0 and "not a boolean" in out.stderr


def test_object_storage_is_chosen_by_the_environment_and_explains_what_is_missing():
    code = (
        "import django; django.setup(); from django.core.files.storage import default_storage as d; "
        "from django.core.files.storage import storages; "
        "print(type(storages['default']).__name__, d.bucket_name, d.endpoint_url)"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("S3_", "MEDIA_"))}
    base |= {"DEBUG": "1", "DJANGO_SETTINGS_MODULE": "crackportal.settings"}
    missing = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=base | {"MEDIA_STORAGE": "s3"},
        capture_output=True,
        text=True,
    )
    assert missing.returncode != 0 and "needs S3_BUCKET" in missing.stderr
    chosen = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=base
        | {"MEDIA_STORAGE": "s3", "S3_BUCKET": "b1", "S3_ENDPOINT_URL": "http://minio:9000"},
        capture_output=True,
        text=True,
    )
    assert chosen.returncode == 0, chosen.stderr
    assert chosen.stdout.split() == ["S3Storage", "b1", "http://minio:9000"]
