"""Create a demo tunnel, a demo login and two inspections (a year apart) of synthetic survey images.

    python manage.py seed_demo [--images 4] [--username demo] [--password ...]

The images are queued for the worker like any upload; run a worker to process them.
Running it again leaves an existing demo in place.
"""

import datetime as dt
import io
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.utils import timezone
from PIL import Image

from crackportal.accounts.roles import ADMIN
from crackportal.assets.models import Tunnel
from crackportal.inspections import services
from crackportal.inspections.uploads import IncomingFile
from crackportal.modelops.services import active_model_version
from inference.synthetic import survey_image

DEMO_CODE = "DEMO-01"


def _jpeg(rgb) -> io.BytesIO:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=92)
    buffer.seek(0)
    return buffer


class Command(BaseCommand):
    help = "Create the demo tunnel, a demo user and a survey of synthetic images (queued for the worker)."

    def add_arguments(self, parser):
        parser.add_argument("--images", type=int, default=4)
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default=None, help="default: a random one, printed")

    def handle(self, *args, images, username, password, **options):
        active_model_version()  # registers the shipped default model on a fresh database
        call_command("create_roles", stdout=self.stdout)
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        if user is None or password:
            password = password or secrets.token_urlsafe(9)
            user = user or user_model(username=username, is_staff=True, is_superuser=True)
            user.set_password(password)
            user.save()
            self.stdout.write(self.style.SUCCESS(f"Demo login: {username} / {password}"))
        else:
            self.stdout.write(f"Demo login: {username} (password unchanged; reset with --password)")

        user.groups.add(Group.objects.get(name=ADMIN))
        tunnel, created = Tunnel.objects.get_or_create(
            code=DEMO_CODE,
            defaults={
                "name": "Demo tunnel (synthetic survey)",
                "length_m": 120.0,
                "circumference_m": 14.0,
                "ring_length_m": 1.5,
                "segments_per_ring": 6,
            },
        )
        tunnel.members.add(user)
        if not created and tunnel.runs.exists():
            self.stdout.write(f"Demo tunnel {DEMO_CODE} already has inspections; nothing added.")
            return
        today = timezone.localdate()
        # a year earlier: the same lining with fewer, narrower cracks, so tracking shows growth
        previous = self._survey(
            tunnel, user, today - dt.timedelta(days=365), "Previous survey", images, older=True
        )
        current = self._survey(tunnel, user, today, "Demo survey", images, older=False)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo tunnel {DEMO_CODE}: inspections #{previous} and #{current} "
                f"with {images} images each, queued for the worker."
            )
        )

    def _survey(self, tunnel, user, date, label, images: int, older: bool) -> int:
        run = services.create_run(tunnel=tunnel, date=date, label=label, created_by=user)
        files, rows = (
            [],
            ["filename,chainage_start_m,chainage_end_m,arc_start_m,arc_end_m,mm_per_px"],
        )
        mm_per_px = 0.5
        for i in range(images):
            n_cracks = 1 + i % 3
            # same seed: the same crack paths; the older survey misses the newest crack of
            # some images and its cracks are 60 % as wide
            rgb, _, _ = survey_image(
                960,
                640,
                n_cracks=max(1, n_cracks - 1) if older else n_cracks,
                seed=100 + i,
                widths_px=(0.9, 2.4) if older else (1.5, 4.0),
            )
            name = f"demo_{i + 1:03d}.jpg"
            buffer = _jpeg(rgb)
            files.append(IncomingFile(name, buffer, buffer.getbuffer().nbytes))
            start = 10.0 + i * 960 * mm_per_px / 1000
            rows.append(f"{name},{start:.3f},{start + 0.48:.3f},2.000,2.320,{mm_per_px}")
        manifest = io.BytesIO("\n".join(rows).encode())
        services.upload_survey(
            run=run,
            files=files,
            manifest=IncomingFile("manifest.csv", manifest, manifest.getbuffer().nbytes),
        )
        return run.pk
