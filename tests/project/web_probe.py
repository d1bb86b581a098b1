"""Run as a process of its own: import the URL conf, render every page, upload a survey, and
print which heavy modules (the neural network) the web process loaded. Used by
test_web_process.py; its own process, because the test process has loaded torch already.

    python -m tests.project.web_probe VAR_DIR
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

HEAVY = ("torch", "segmentation_models_pytorch", "onnxruntime", "skimage", "cv2", "albumentations")


def _loaded() -> list[str]:
    return sorted(name for name in HEAVY if name in sys.modules)


def _jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (480, 320), (150, 150, 150)).save(buffer, format="JPEG")
    return buffer.getvalue()


def main(var_dir: str) -> dict:
    os.environ["VAR_DIR"] = var_dir
    os.environ["DATABASE_URL"] = f"sqlite:///{Path(var_dir) / 'probe.sqlite3'}"
    os.environ.pop("REDIS_URL", None)  # the embedded broker: nothing here must reach a worker
    os.environ["DJANGO_SETTINGS_MODULE"] = "crackportal.settings_test"
    import django

    django.setup()
    import crackportal.urls  # noqa: F401

    after_urls = _loaded()

    from django.contrib.auth.models import Group, User
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment

    from crackportal.assets.models import Tunnel
    from tests.factories import make_page_objects, page_cases

    setup_test_environment()
    call_command("migrate", verbosity=0)
    admin = User.objects.create_user("probe-admin", password="x")
    admin.groups.add(Group.objects.get_or_create(name="admin")[0])
    tunnel = Tunnel.objects.create(code="T-PROBE", name="Probe", length_m=100, circumference_m=10)
    objects = make_page_objects(tunnel, admin, _jpeg())
    client = Client()
    client.force_login(admin)
    statuses = {}
    for name, method, path, _least, _ok in page_cases(objects):
        if name == "logout":
            continue
        data = {"kind": "xlsx"} if name == "report-request" else {}
        statuses[name] = getattr(client, method)(path, data).status_code
    upload = client.post(
        f"/runs/{objects['run']}/",
        {"files": [SimpleUploadedFile("probe.jpg", _jpeg(), "image/jpeg")]},
    )
    statuses["upload"] = upload.status_code
    return {"after_urls": after_urls, "after_pages": _loaded(), "statuses": statuses}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
