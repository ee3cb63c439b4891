#!/usr/bin/env bash
# Full check: system packages, virtualenv, throwaway PostgreSQL + Redis, lint,
# migrations check, pytest. Used by `make test` and CI (.ci/run).
#
#   scripts/test.sh                    # everything
#   scripts/test.sh -k billing -x      # extra arguments go to pytest
#   SKIP_LINT=1 scripts/test.sh        # skip ruff and mypy
#
# Env: SKIP_LINT=1; TEST_PG_PORT / TEST_REDIS_PORT (default: free ports picked
# at random); PG_BINDIR (PostgreSQL server binaries; default: newest
# /usr/lib/postgresql/*/bin); CHROMIUM_PATH (default /usr/bin/chromium);
# KEEP_TEST_TMP=1 keeps the temporary directory (logs) after the run.
#
# Every service this script starts is stopped again by the EXIT trap, whether
# the run passes, fails or is interrupted; it never touches other processes.
set -euo pipefail
shopt -s inherit_errexit

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

# Debian packages the tests need; each is installed only when missing. The SIP edge
# tests (tests/edge) run Kamailio, rtpengine and SIPp from these; the API benchmark
# (make bench-api) drives gunicorn with wrk.
APT_PACKAGES=(
    postgresql
    redis-server
    chromium
    kamailio
    kamailio-postgres-modules
    kamailio-tls-modules
    kamailio-json-modules
    kamailio-extra-modules
    kamailio-utils-modules
    sip-tester
    rtpengine-daemon
    wrk
)

PG_DB=skypemanager

# --------------------------------------------------------------------------
# Phases, timing and output
# --------------------------------------------------------------------------
now_us() {
    if [[ -n "${EPOCHREALTIME:-}" ]]; then
        local t=${EPOCHREALTIME/[^0-9]/}   # seconds and microseconds, separator dropped
        echo "$((10#$t))"
    else
        echo "$(($(date +%s) * 1000000))"
    fi
}
fmt_us() { printf '%d.%01ds' "$(($1 / 1000000))" "$(($1 % 1000000 / 100000))"; }

SCRIPT_T0=$(now_us)
PHASE=""
PHASE_T0=0
PHASE_LOG=()

begin() {
    PHASE=$1
    PHASE_T0=$(now_us)
    printf '\n==> %s\n' "$PHASE"
}
end() {
    local dt=$(($(now_us) - PHASE_T0))
    PHASE_LOG+=("$(printf '  %-24s %9s  ok' "$PHASE" "$(fmt_us "$dt")")")
    printf '==> %s: ok (%s)\n' "$PHASE" "$(fmt_us "$dt")"
    PHASE=""
}
# Echo a command, then run it (a failure stops the script through set -e).
run() {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    "$@"
}
# Run a command as the PostgreSQL owner (`runuser -u postgres` when root: initdb
# and postgres refuse to run as root).
as_pg() {
    if ((EUID == 0)); then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# --------------------------------------------------------------------------
# Cleanup: stop what we started, delete the temp dir, print the timings
# --------------------------------------------------------------------------
WORK=""
PGDATA_DIR=""
PG_PID=""
REDIS_PID=""
PG_BIN=""
JUNIT_XML=""

pid_alive() { [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; }

# Wait up to $2 seconds for pid $1 to exit.
wait_gone() {
    local pid=$1 tries=$(($2 * 10))
    while pid_alive "$pid" && ((tries-- > 0)); do sleep 0.1; done
    ! pid_alive "$pid"
}

# True when pid $2 is alive and is the program $1 (guards against pid reuse).
pid_is() {
    pid_alive "$2" && [[ "$(ps -o comm= -p "$2" 2>/dev/null)" == "$1"* ]]
}

stop_redis() {
    [[ -n "$REDIS_PID" ]] || return 0
    if pid_alive "$REDIS_PID"; then
        echo "+ kill $REDIS_PID   # redis-server"
        kill -TERM "$REDIS_PID" 2>/dev/null || true
        if ! wait_gone "$REDIS_PID" 10 && pid_is redis-server "$REDIS_PID"; then
            echo "redis-server $REDIS_PID did not stop: SIGKILL"
            kill -KILL "$REDIS_PID" 2>/dev/null || true
        fi
    fi
    wait "$REDIS_PID" 2>/dev/null || true # reap our child
    REDIS_PID=""
}

stop_postgres() {
    [[ -n "$PGDATA_DIR" ]] || return 0
    if [[ -z "$PG_PID" && -f "$PGDATA_DIR/postmaster.pid" ]]; then
        PG_PID=$(head -n1 "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true)
    fi
    if [[ -f "$PGDATA_DIR/postmaster.pid" ]] || pid_alive "$PG_PID"; then
        echo "+ pg_ctl -D $PGDATA_DIR -m fast -w stop   # postgres $PG_PID"
        as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m fast -t 30 -w stop >/dev/null ||
            as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m immediate -t 10 -w stop >/dev/null 2>&1 ||
            true
    fi
    if pid_alive "$PG_PID" && ! wait_gone "$PG_PID" 5 && pid_is postgres "$PG_PID"; then
        echo "postgres $PG_PID did not stop: SIGKILL"
        kill -KILL "$PG_PID" 2>/dev/null || true
        wait_gone "$PG_PID" 5 || true
    fi
    PG_PID=""
    PGDATA_DIR=""
}

print_test_counts() {
    # Repeat pytest's counts as the last line, as "pytest: N passed, N failed[, N skipped]".
    [[ -n "$JUNIT_XML" && -s "$JUNIT_XML" ]] || return 0
    "$ROOT/.venv/bin/python" - "$JUNIT_XML" <<'PY' || true
import sys
import xml.etree.ElementTree as ET

root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
n = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
failed = n["failures"] + n["errors"]
passed = n["tests"] - failed - n["skipped"]
print(f"pytest: {passed} passed, {failed} failed, {n['skipped']} skipped")
PY
}

on_exit() {
    local rc=$?
    set +e
    trap '' INT TERM HUP
    local failed_phase=$PHASE
    if [[ -n "$PHASE" ]]; then
        PHASE_LOG+=("$(printf '  %-24s %9s  FAILED (exit %d)' "$PHASE" "$(fmt_us $(($(now_us) - PHASE_T0)))" "$rc")")
        PHASE=""
    fi
    local COUNTS_LINE=""
    if [[ -n "$REDIS_PID$PG_PID$PGDATA_DIR$WORK" ]]; then
        printf '\n==> cleanup\n'
        local t0
        t0=$(now_us)
        COUNTS_LINE=$(print_test_counts)
        stop_redis
        stop_postgres
        if [[ -n "$WORK" && -d "$WORK" ]]; then
            if [[ "${KEEP_TEST_TMP:-}" == 1 ]]; then
                echo "kept $WORK"
            else
                rm -rf -- "$WORK"
            fi
        fi
        PHASE_LOG+=("$(printf '  %-24s %9s' cleanup "$(fmt_us $(($(now_us) - t0)))")")
    fi
    printf '\n==> timings\n'
    printf '%s\n' "${PHASE_LOG[@]}"
    printf '  %-24s %9s\n' total "$(fmt_us $(($(now_us) - SCRIPT_T0)))"
    if ((rc == 0)); then
        echo "==> all checks passed"
    elif [[ "$failed_phase" == pytest && "$rc" == 5 ]]; then
        echo "==> FAILED: pytest collected no tests (exit 5)" >&2
    else
        echo "==> FAILED in phase '${failed_phase:-?}' (exit $rc)" >&2
    fi
    if [[ -n "$COUNTS_LINE" ]]; then
        echo "$COUNTS_LINE"
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# --------------------------------------------------------------------------
# (a) Debian packages
# --------------------------------------------------------------------------
apt_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

ensure_apt_packages() {
    if ! command -v dpkg-query >/dev/null; then
        echo "not a Debian system: make sure these are installed yourself: ${APT_PACKAGES[*]}"
        return 0
    fi
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        apt_installed "$p" || missing+=("$p")
    done
    if ((${#missing[@]} == 0)); then
        echo "already installed: ${APT_PACKAGES[*]}"
        return 0
    fi
    echo "missing: ${missing[*]}"
    local sudo=()
    if ((EUID != 0)); then
        if command -v sudo >/dev/null; then
            sudo=(sudo)
        else
            echo "not root and no sudo: install ${missing[*]} yourself" >&2
            return 1
        fi
    fi
    local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get)
    # Refresh the package lists only when there are none, or when installing
    # with the current ones fails (e.g. stale lists pointing at removed versions).
    if ! compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null; then
        run "${apt[@]}" update
    fi
    if ! run "${apt[@]}" install -y --no-install-recommends "${missing[@]}"; then
        run "${apt[@]}" update
        run "${apt[@]}" install -y --no-install-recommends "${missing[@]}"
    fi
}

begin "system packages"
ensure_apt_packages
end

# --------------------------------------------------------------------------
# (b) virtualenv
# --------------------------------------------------------------------------
begin "virtualenv"
run scripts/venv.sh requirements-dev.txt
export VIRTUAL_ENV="$ROOT/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"
PY="$VIRTUAL_ENV/bin/python"
end

# --------------------------------------------------------------------------
# Lint (static, needs no services: runs first so it fails fast)
# --------------------------------------------------------------------------
if [[ "${SKIP_LINT:-}" == 1 ]]; then
    printf '\n==> lint skipped (SKIP_LINT=1)\n'
    PHASE_LOG+=("$(printf '  %-24s %9s  skipped' lint -)")
else
    begin "ruff check"
    run ruff check .
    end
    begin "ruff format --check"
    run ruff format --check .
    end
    begin "mypy"
    run mypy .
    end
    begin "layers (import-linter)"
    run lint-imports
    end
fi

# --------------------------------------------------------------------------
# (c) throwaway PostgreSQL and Redis
# --------------------------------------------------------------------------
find_pg_bindir() {
    if [[ -n "${PG_BINDIR:-}" ]]; then
        echo "$PG_BINDIR"
        return
    fi
    local d
    d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n1)
    if [[ -n "$d" && -x "$d/initdb" ]]; then
        echo "$d"
        return
    fi
    if command -v pg_config >/dev/null && [[ -x "$(pg_config --bindir)/initdb" ]]; then
        pg_config --bindir
        return
    fi
    if command -v initdb >/dev/null; then
        dirname "$(command -v initdb)"
        return
    fi
    echo "PostgreSQL server binaries (initdb) not found; set PG_BINDIR" >&2
    return 1
}

# Two distinct free loopback ports, or the ones given.
pick_ports() {
    "$PY" - <<'PY'
import socket

socks = []
for _ in range(2):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(*(s.getsockname()[1] for s in socks))
for s in socks:
    s.close()
PY
}

start_postgres() {
    PG_BIN=$(find_pg_bindir)
    PGDATA_DIR="$WORK/pgdata"
    local initdb=("$PG_BIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust -E UTF8 --no-locale
        --no-sync --no-instructions)
    printf '+ as_pg'
    printf ' %q' "${initdb[@]}"
    printf ' >%q\n' "$WORK/initdb.log"
    as_pg "${initdb[@]}" >"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log" >&2; return 1; }
    local opts="-c listen_addresses=127.0.0.1 -p $PG_PORT -k '$WORK'"
    opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    if ! run as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$WORK/postgres.log" -o "$opts" -w -t 60 start; then
        cat "$WORK/postgres.log" >&2 || true
        return 1
    fi
    PG_PID=$(head -n1 "$PGDATA_DIR/postmaster.pid")
    echo "postgres pid $PG_PID on 127.0.0.1:$PG_PORT"
    local tries=100
    until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; do
        ((tries-- > 0)) || { echo "PostgreSQL did not accept connections" >&2; cat "$WORK/postgres.log" >&2; return 1; }
        sleep 0.1
    done
    run "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$PG_DB"
}

# redis-cli against our port, bounded in time (a foreign listener may never answer).
rcli() {
    if command -v timeout >/dev/null; then
        timeout 2 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"
    else
        redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"
    fi
}

start_redis() {
    # setsid: its own session, so a Ctrl-C meant for pytest does not stop Redis
    # under the running tests (the EXIT trap stops it). setsid execs in place
    # here, so $! is redis-server's own pid; that is checked below.
    local cmd=(redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no
        --daemonize no --dir "$WORK")
    printf '+ setsid'
    printf ' %q' "${cmd[@]}"
    printf ' >%q 2>&1 &\n' "$WORK/redis.log"
    setsid "${cmd[@]}" </dev/null >"$WORK/redis.log" 2>&1 &
    REDIS_PID=$!
    local tries=100
    while true; do
        if ! pid_alive "$REDIS_PID" || ((tries-- <= 0)); then
            echo "Redis did not start" >&2
            cat "$WORK/redis.log" >&2 || true
            return 1
        fi
        [[ "$(rcli ping 2>/dev/null)" == PONG ]] && break
        sleep 0.1
    done
    # Make sure the server answering on the port is the one we started.
    local served_by
    served_by=$(rcli info server | tr -d '\r' |
        sed -n 's/^process_id://p')
    if [[ "$served_by" != "$REDIS_PID" ]]; then
        echo "127.0.0.1:$REDIS_PORT is served by pid ${served_by:-?}, not by our redis-server $REDIS_PID" >&2
        return 1
    fi
    echo "redis-server pid $REDIS_PID on 127.0.0.1:$REDIS_PORT"
}

begin "services"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/skypemanager-test.XXXXXX")
if ((EUID == 0)); then
    chown postgres: "$WORK"
fi
read -r PICKED_PG PICKED_REDIS < <(pick_ports) || true
PG_PORT=${TEST_PG_PORT:-$PICKED_PG}
REDIS_PORT=${TEST_REDIS_PORT:-$PICKED_REDIS}
[[ -n "$PG_PORT" && -n "$REDIS_PORT" ]] || { echo "could not pick free ports" >&2; exit 1; }
echo "temp dir $WORK"
start_postgres
start_redis

export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/$PG_DB"
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export CHROMIUM_PATH=${CHROMIUM_PATH:-/usr/bin/chromium}
export DJANGO_SETTINGS_MODULE=skypemanager.settings_test
echo "DATABASE_URL=$DATABASE_URL"
echo "REDIS_URL=$REDIS_URL"
echo "CHROMIUM_PATH=$CHROMIUM_PATH"
echo "DJANGO_SETTINGS_MODULE=$DJANGO_SETTINGS_MODULE"
[[ -x "$CHROMIUM_PATH" ]] || echo "warning: $CHROMIUM_PATH not found: browser tests will fail" >&2
end

# --------------------------------------------------------------------------
# (e) checks and tests
# --------------------------------------------------------------------------
begin "migrations check"
run "$PY" manage.py makemigrations --check --dry-run
end

begin "pytest"
JUNIT_XML="$WORK/pytest-junit.xml"
# Exit code 5 (no tests collected) is a failure like any other non-zero code.
# One pytest-xdist worker per core (PYTEST_WORKERS=0 runs in one process); each worker
# gets its own test database, Redis database and localstripe. Arguments that switch xdist
# off (`-p no:xdist`, e.g. to watch one test with -s) get no -n, which would not parse.
XDIST=(-n "${PYTEST_WORKERS:-auto}")
prev=""
for arg in "$@"; do
    if [[ "$arg" == "-pno:xdist" || ("$prev" == "-p" && "$arg" == "no:xdist") ]]; then
        XDIST=()
    fi
    prev=$arg
done
run "$PY" -m pytest "${XDIST[@]}" --junitxml="$JUNIT_XML" "$@"
end
