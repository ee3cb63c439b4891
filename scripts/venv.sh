#!/usr/bin/env bash
# Create or update the project virtualenv (.venv) from a requirements file.
#
#   scripts/venv.sh [requirements.txt|requirements-dev.txt]
#
# pip runs only when the requirements (the file plus every file it pulls in with
# `-r`) or the interpreter changed since the last successful install; a stamp
# file inside .venv records that. Env: PYTHON (interpreter used to create the
# venv; default python3.11, else python3), VENV (default .venv).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

REQ=${1:-requirements.txt}
VENV=${VENV:-.venv}

if [[ -z "${PYTHON:-}" ]]; then
    PYTHON=$(command -v python3.11 || command -v python3 || true)
fi
if [[ -z "$PYTHON" ]]; then
    echo "venv.sh: no python3 found (set PYTHON=/path/to/python3.11)" >&2
    exit 1
fi

# The requirements file followed by the files it includes with -r/--requirement.
req_closure() {
    local file=$1 dir inc
    [[ -f "$file" ]] || { echo "venv.sh: $file not found" >&2; return 1; }
    echo "$file"
    dir=$(dirname "$file")
    sed -nE 's/^[[:space:]]*(-r|--requirement)[[:space:]=]+([^[:space:]#]+).*/\2/p' "$file" |
        while read -r inc; do
            [[ "$inc" = /* ]] || inc="$dir/$inc"
            req_closure "$inc"
        done
}

# Hash of the requirement files' contents and of the venv's interpreter version.
req_hash() {
    local files
    files=$(req_closure "$1")
    {
        # shellcheck disable=SC2086
        cat $files
        "$VENV/bin/python" -c 'import sys; print(sys.version)'
    } | sha256sum | cut -d' ' -f1
}

stamp_file() { echo "$VENV/.stamp-$(basename "$1")"; }

stamp_current() {
    local stamp
    stamp=$(stamp_file "$1")
    [[ -f "$1" && -f "$stamp" && "$(cat "$stamp")" == "$(req_hash "$1")" ]]
}

# A venv whose interpreter no longer runs (moved, or made on another machine) is rebuilt.
if [[ -e "$VENV" ]] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    echo "venv.sh: $VENV is broken, recreating it"
    rm -rf -- "$VENV"
fi
if [[ ! -e "$VENV" ]]; then
    echo "+ $PYTHON -m venv $VENV"
    "$PYTHON" -m venv "$VENV"
fi

if stamp_current "$REQ"; then
    exit 0
fi
# requirements-dev.txt includes requirements.txt: a current dev install satisfies the runtime one.
if [[ "$(basename "$REQ")" == requirements.txt && -f requirements-dev.txt ]] && stamp_current requirements-dev.txt; then
    exit 0
fi

echo "+ $VENV/bin/pip install -r $REQ"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# The machine's pip.conf makes pip print harmless "Location ... is ignored" warnings: drop them.
"$VENV/bin/python" -m pip install --quiet -r "$REQ" 2>&1 |
    { grep -vE 'Location .* is ignored' || true; }
req_hash "$REQ" >"$(stamp_file "$REQ")"
