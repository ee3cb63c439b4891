#!/usr/bin/env bash
# Run the portal on a laptop: no services needed (SQLite file db.sqlite3, Celery
# tasks in-process) unless DATABASE_URL / REDIS_URL are set. Without real Stripe test
# keys (STRIPE_SECRET_KEY), localstripe stands in for Stripe on loopback.
#
#   scripts/run.sh              # http://127.0.0.1:8000/
#   PORT=8080 scripts/run.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PORT=${PORT:-8000}
PY=.venv/bin/python
# Settings default to DEBUG off (the safe production default); the laptop wants it on.
export DEBUG=${DEBUG:-true}
export SITE_URL=${SITE_URL:-http://127.0.0.1:$PORT}

# Creates .venv if missing; pip runs only when the requirements changed.
scripts/venv.sh requirements-local.txt

# The laptop defaults in .env too (manage.py reads it), so the README's staff commands work in a
# fresh shell as they do here. An existing .env is left as it is.
if [[ ! -e .env ]]; then
    cat > .env <<ENVEOF
# Written by make run: the laptop defaults (SQLite db.sqlite3, tasks in-process, e-mail printed
# to the terminal). manage.py reads this file; variables set in the environment win.
DEBUG=true
SITE_URL=http://127.0.0.1:$PORT
ENVEOF
    echo "wrote .env (the laptop defaults, for manage.py commands in another shell)"
fi

run() {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    "$@"
}

STRIPE_PID=""
cleanup() {
    if [[ -n "$STRIPE_PID" ]] && kill -0 "$STRIPE_PID" 2>/dev/null; then
        kill "$STRIPE_PID" 2>/dev/null || true
        wait "$STRIPE_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT INT TERM

if [[ -z "${STRIPE_SECRET_KEY:-}" ]]; then
    STRIPE_PORT=${STRIPE_PORT:-$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
    export STRIPE_SECRET_KEY=sk_test_localstripe
    export STRIPE_PUBLISHABLE_KEY=pk_test_localstripe
    export STRIPE_WEBHOOK_SECRET=whsec_localstripe
    export STRIPE_API_BASE=http://127.0.0.1:$STRIPE_PORT
    "$PY" scripts/localstripe_server.py --port "$STRIPE_PORT" >/dev/null 2>&1 &
    STRIPE_PID=$!
    # Wait for it, then have it deliver signed webhooks to the portal, as Stripe would.
    "$PY" - "$STRIPE_API_BASE" "http://127.0.0.1:$PORT/stripe/webhook/" "$STRIPE_WEBHOOK_SECRET" <<'PYEOF' \
        || echo "warning: localstripe did not start; payments cannot be tried" >&2
import sys, time, urllib.parse, urllib.request
base, url, secret = sys.argv[1:4]
for _ in range(100):
    try:
        urllib.request.urlopen(base + "/js.stripe.com/v3/", timeout=1).read()
        break
    except OSError:
        time.sleep(0.1)
data = urllib.parse.urlencode({"url": url, "secret": secret}).encode()
urllib.request.urlopen(urllib.request.Request(base + "/_config/webhooks/laptop", data=data), timeout=5).read()
PYEOF
    echo "localstripe (a local stand-in for Stripe) on $STRIPE_API_BASE: pay with card 4242424242424242," \
        "expiry month and year as two digits each (12, 34), any CVC; PayPal needs real Stripe test keys"
fi

run "$PY" manage.py migrate --noinput
run "$PY" manage.py seed_demo --staff
printf '+ %s manage.py runserver 127.0.0.1:%s\n' "$PY" "$PORT"
"$PY" manage.py runserver "127.0.0.1:$PORT"
