"""`/health/`: is this process able to reach its database and broker? For load balancers and probes."""

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # a probe reports, it never raises
        return f"error: {type(exc).__name__}"
    return "ok"


def _broker() -> str:
    from crackportal.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return "ok"


@never_cache
def health(request):
    """200 with {"database": "ok", "broker": "ok"} when both answer, else 503 naming the failure."""
    checks = {"database": _database(), "broker": _broker()}
    healthy = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503
    )
