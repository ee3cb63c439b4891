#!/usr/bin/env bash
# Run the development server on a laptop: no services needed (SQLite file
# db.sqlite3, eager Celery tasks) unless DATABASE_URL / REDIS_URL are set.
#
#   scripts/run.sh              # http://127.0.0.1:8000/
#   PORT=8080 scripts/run.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PORT=${PORT:-8000}
PY=.venv/bin/python
# Settings default to DEBUG off (the safe production default); the laptop wants it on.
export DEBUG=${DEBUG:-true}

# Creates .venv if missing; pip runs only when requirements.txt changed.
scripts/venv.sh requirements.txt

run() {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    "$@"
}

run "$PY" manage.py migrate --noinput
run "$PY" manage.py seed_demo
printf '+ %s manage.py runserver 127.0.0.1:%s\n' "$PY" "$PORT"
exec "$PY" manage.py runserver "127.0.0.1:$PORT"
