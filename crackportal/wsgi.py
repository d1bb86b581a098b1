"""WSGI entry point (gunicorn crackportal.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crackportal.settings")
application = get_wsgi_application()
