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

# two worker processes: a training run never holds back the images of a new upload
echo "==> starting the workers (logs: var/log/worker.log, var/log/training-worker.log)"
$PY -m celery -A crackportal worker -B -Q inference,maintenance --concurrency 1 --loglevel INFO \
  -n "inference@%h" > var/log/worker.log 2>&1 &
WORKER=$!
$PY -m celery -A crackportal worker -Q training --concurrency 1 --loglevel INFO \
  -n "training@%h" > var/log/training-worker.log 2>&1 &
TRAINER=$!
trap 'kill $WORKER $TRAINER 2>/dev/null; wait $WORKER $TRAINER 2>/dev/null' EXIT INT TERM

echo "==> CrackPortal on http://127.0.0.1:$PORT  (Ctrl-C stops the server and the workers)"
$PY manage.py runserver "127.0.0.1:$PORT"
