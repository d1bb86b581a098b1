#!/usr/bin/env bash
# One command to a running portal: embedded SQLite + local worker + demo tunnel on :8000.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh

export DEBUG=${DEBUG:-1}
PORT=${PORT:-8000}
PY=.venv/bin/python
mkdir -p var/log

$PY manage.py migrate --no-input
$PY manage.py seed_demo
$PY manage.py create_roles --demo-users

echo "==> starting the worker (log: var/log/worker.log)"
$PY -m celery -A crackportal worker -B -Q inference,training,maintenance --concurrency 1 --loglevel INFO \
  > var/log/worker.log 2>&1 &
WORKER=$!
trap 'kill $WORKER 2>/dev/null; wait $WORKER 2>/dev/null' EXIT INT TERM

echo "==> CrackPortal on http://127.0.0.1:$PORT  (Ctrl-C stops the server and the worker)"
$PY manage.py runserver "127.0.0.1:$PORT"
