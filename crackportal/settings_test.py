"""Settings for the test suite: the normal settings, with test-only defaults.

Tests keep their database, media and embedded broker under var/test, apart from the demo's.
DATABASE_URL / REDIS_URL, when set, still point the tests at real PostgreSQL and Redis.
"""

import os
from pathlib import Path

_root = Path(__file__).resolve().parent.parent
os.environ.setdefault("VAR_DIR", str(_root / "var" / "test"))
os.environ.setdefault("SECRET_KEY", "tests-only-not-secret")
os.environ.setdefault(
    "DEBUG", "1"
)  # plain http for the live server; Django's test runner turns DEBUG off

from crackportal.settings import *  # noqa: E402,F403
