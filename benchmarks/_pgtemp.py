"""A throwaway PostgreSQL cluster on a free loopback port, for benchmarks.

Started from the Debian server binaries (as the `postgres` user when run as root: initdb and
postgres refuse root), in a temporary directory that is removed again on exit.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

# Sized for a 2-core, 24 GiB machine; durability is off as in the test suite (a benchmark
# database is thrown away). The same settings serve the plain COPY and the rating run.
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "1GB",
    "work_mem": "64MB",
    "maintenance_work_mem": "512MB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
}


def _bindir() -> str:
    if os.environ.get("PG_BINDIR"):
        return os.environ["PG_BINDIR"]
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise SystemExit("PostgreSQL server binaries not found (apt-get install postgresql, or set PG_BINDIR).")
    return os.path.dirname(found[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def throwaway_postgres(extra_settings: dict[str, str] | None = None) -> Iterator[str]:
    """Yields a postgres:// URL of a new, empty database; stops the server afterwards.
    `extra_settings` are added to SETTINGS (the API benchmark loads pg_stat_statements)."""
    bindir = _bindir()
    work = tempfile.mkdtemp(prefix="bench-pg-")
    data = os.path.join(work, "data")
    if os.geteuid() == 0:
        shutil.chown(work, "postgres")
    port = _free_port()
    options = (
        " ".join(f"-c {k}={v}" for k, v in {**SETTINGS, **(extra_settings or {})}.items()) + f" -p {port} -k {work}"
    )
    log = os.path.join(work, "postgres.log")
    try:
        subprocess.run(
            _as_postgres(
                [f"{bindir}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale"]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
            cwd="/",
        )
        subprocess.run(
            _as_postgres([f"{bindir}/pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "-t", "60", "start"]),
            check=True,
            stdout=subprocess.DEVNULL,
            cwd="/",
        )
        subprocess.run(
            _as_postgres([f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "bench"]),
            check=True,
            cwd="/",
        )
        yield f"postgres://postgres@127.0.0.1:{port}/bench"
    finally:
        if os.path.exists(os.path.join(data, "postmaster.pid")):
            subprocess.run(
                _as_postgres([f"{bindir}/pg_ctl", "-D", data, "-m", "fast", "-w", "stop"]),
                stdout=subprocess.DEVNULL,
                cwd="/",
                check=False,
            )
        shutil.rmtree(work, ignore_errors=True)
