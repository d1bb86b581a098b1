#!/usr/bin/env bash
# One command to run the whole suite. Without DATABASE_URL / REDIS_URL the integration tests
# run on the embedded stack (SQLite file + filesystem broker + a real worker process).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh

# Browser tests need Debian's Chromium; install it when we can (root with apt-get).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing chromium for the browser tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
      || echo "warning: chromium could not be installed; browser tests will be skipped" >&2
  else
    echo "note: chromium not found; browser tests will be skipped (apt-get install chromium)" >&2
  fi
fi

# The slow-client test runs Debian's nginx in front of gunicorn (as docker-compose.yml does).
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing nginx for the reverse-proxy test"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null) \
      || echo "warning: nginx could not be installed; the proxy test will be skipped" >&2
  fi
fi

# PDF reports (WeasyPrint) need Pango.
if ! ldconfig -p 2>/dev/null | grep -q 'libpangoft2-1.0'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Pango for the PDF reports"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 >/dev/null) \
      || echo "warning: Pango could not be installed; PDF report tests will fail" >&2
  fi
fi

rm -rf var/test
mkdir -p var/test test-artifacts
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
