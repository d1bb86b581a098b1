"""Schemathesis against the API's own OpenAPI schema, as an admin: no request may cause a 5xx."""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error

from crackportal.wsgi import application
from tests.factories import make_crack, make_image, make_run


def _spec() -> dict:
    """The API's OpenAPI document as the schema view serves it (that view needs a sign-in)."""
    import json

    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    return json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(public=True)))


schema = schemathesis.openapi.from_dict(_spec())
schema.app = application


@pytest.fixture
def keep_test_connection():
    """Requests go through the real WSGI handler, which closes DB connections when they end;
    the test's transaction must survive that (Django's test client does the same)."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def admin_token(db, admin_user, tunnel, keep_test_connection):
    image = make_image(make_run(tunnel, "2026-05-01"), "a.jpg")
    make_crack(image, 0)
    return Token.objects.get_or_create(user=admin_user)[0].key


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", 12)),  # a longer run: FUZZ_EXAMPLES=300
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_no_server_errors(case, admin_token):
    case.call_and_validate(
        headers={"Authorization": f"Token {admin_token}"}, checks=[not_a_server_error]
    )
