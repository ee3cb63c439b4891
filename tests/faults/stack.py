"""The fault test's own stack, on loopback: PostgreSQL (a throwaway cluster), Redis (AOF),
localstripe, gunicorn (skypemanager/gunicorn_conf.py), a Celery worker and beat, each under
a small supervisor loop that starts it again when it exits (docker-compose's
`restart: unless-stopped`).

Every process is started here, recorded, and stopped by its own pid (or the process group it
was started in, for gunicorn's and Celery's children) in `Stack.close()`, which the test calls
in a `finally`. Nothing else on the machine is touched: ports are free ones picked at start.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import psycopg
import requests

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
DB_NAME = "skypemanager"
STRIPE_KEY = "sk_test_faults"
WEBHOOK_SECRET = "whsec_faults_" + "x" * 16
WEBHOOK_EVENTS = ["payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled"]


def now() -> float:
    return time.monotonic()


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            probe.bind(("127.0.0.1", 0))
            sockets.append(probe)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def pg_bindir() -> Path:
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError("PostgreSQL server binaries (initdb) not found; set PG_BINDIR")


def as_postgres(argv: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def wait_for(what: str, check: Callable[[], bool], timeout: float, *, every: float = 0.1) -> float:
    """Poll until `check()` is true; the seconds it took. AssertionError after `timeout`."""
    start = now()
    while True:
        try:
            if check():
                return now() - start
        except Exception:  # noqa: S110 - not up yet
            pass
        if now() - start > timeout:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(every)


def stop_process_group(proc: subprocess.Popen[bytes], *, grace: float = 20) -> None:
    """SIGTERM the process group `proc` leads (started with start_new_session), SIGKILL it
    after `grace` seconds, and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@dataclass
class Supervised:
    """A process that is started again whenever it exits, until `stop()`: the stand-in for
    docker-compose's `restart: unless-stopped`. Each restart is logged, with its exit code."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    stack: Stack
    before_start: Callable[[], None] | None = None
    proc: subprocess.Popen[bytes] | None = None
    starts: list[float] = field(default_factory=list)
    exits: list[tuple[float, int]] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _ready: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"supervise-{self.name}", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        while not self._stopping.is_set():
            if self.before_start is not None:
                self.before_start()
            with self.log.open("ab") as out:
                proc = self.stack.spawn(self.argv, env=self.env, out=out)
            self.proc = proc
            self.starts.append(now())
            self._ready.set()
            code = proc.wait()
            self.exits.append((now(), code))
            if self._stopping.is_set():
                return
            self.stack.note(f"supervisor: {self.name} (pid {proc.pid}) exited with {code}; restarting it in 1 s")
            with self.log.open("a") as out:
                out.write(f"\n--- supervisor: exited with {code}, restarting ---\n")
            self._stopping.wait(1)

    @property
    def restarts(self) -> int:
        return max(0, len(self.starts) - 1)

    def kill(self) -> int:
        """SIGKILL the process and its children (its own process group): a container killed."""
        assert self.proc is not None
        pid = self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        return pid

    def stop(self) -> None:
        self._stopping.set()
        proc = self.proc
        if proc is not None and proc.poll() is None:
            stop_process_group(proc)
        if self._thread is not None:
            self._thread.join(timeout=10)


class Stack:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.pg_port, self.redis_port, self.stripe_port, self.web_port = free_ports(4)
        self.pg_bin = pg_bindir()
        self.pgdata = work / "pgdata"
        self.redis_dir = work / "redis"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.postmaster_pids: set[int] = set()
        self.events: list[tuple[float, str]] = []
        self.t0 = now()
        self.redis: subprocess.Popen[bytes] | None = None
        self.stripe: subprocess.Popen[bytes] | None = None
        self.web: subprocess.Popen[bytes] | None = None
        self.worker: Supervised | None = None
        self.beat: Supervised | None = None
        self.base = f"http://127.0.0.1:{self.web_port}"
        self.stripe_base = f"http://127.0.0.1:{self.stripe_port}"
        self.database_url = f"postgres://postgres@127.0.0.1:{self.pg_port}/{DB_NAME}"
        self.env = self._app_env()

    # --- bookkeeping ---------------------------------------------------------------------

    def note(self, text: str) -> None:
        self.events.append((now(), text))
        print(f"[faults {now() - self.t0:6.1f}s] {text}", flush=True)  # noqa: T201 - the run's story, shown with -s

    def spawn(
        self, argv: list[str], *, env: dict[str, str] | None = None, out: IO[bytes] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a process in a session of its own (a Ctrl-C meant for pytest does not reach it;
        its children share its process group), and record it for close()."""
        proc = subprocess.Popen(  # noqa: S603 - our own programs, fixed arguments
            argv,
            cwd=ROOT,
            env=env or self.env,
            stdin=subprocess.DEVNULL,
            stdout=out if out is not None else subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def _app_env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV"}}
        return {
            **keep,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT),
            # Production settings, on loopback, without TLS in front.
            "DJANGO_SETTINGS_MODULE": "skypemanager.settings",
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "BEHIND_TLS_PROXY": "false",
            "SITE_URL": self.base,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
            "MEDIA_ROOT": str(self.work / "media"),
            "STRIPE_API_BASE": self.stripe_base,
            "STRIPE_SECRET_KEY": STRIPE_KEY,
            "STRIPE_PUBLISHABLE_KEY": "pk_test_faults",
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            # A frozen Stripe must cost a request seconds, not the SDK's default minute.
            "STRIPE_CONNECT_TIMEOUT": "2",
            "STRIPE_READ_TIMEOUT": "4",
            # The one departure from production: a killed task comes back after 60 s instead of
            # 16 minutes, so the test sees the redelivery. (The task limits must stay below it.)
            "CELERY_VISIBILITY_TIMEOUT": "60",
            "CELERY_TASK_TIME_LIMIT": "50",
            "CELERY_TASK_SOFT_TIME_LIMIT": "45",
            "API_RATE_LIMIT": "100000/minute",
            "LOG_LEVEL": "INFO",
            # gunicorn (skypemanager/gunicorn_conf.py)
            "WEB_LISTEN": f"127.0.0.1:{self.web_port}",
            "WEB_CONCURRENCY": "2",
            "WEB_THREADS": "8",
            "WEB_WORKER_TMP_DIR": "/dev/shm" if Path("/dev/shm").is_dir() else str(self.work),
        }

    # --- PostgreSQL ----------------------------------------------------------------------

    def _pg(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - PostgreSQL's own tools
            as_postgres([str(self.pg_bin / "pg_ctl"), "-D", str(self.pgdata), *args]),
            cwd="/",
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    def pg_init(self) -> None:
        self.work.chmod(0o755)
        if os.geteuid() == 0:
            shutil.chown(self.work, "postgres")
        subprocess.run(  # noqa: S603
            as_postgres(
                [
                    str(self.pg_bin / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                    "--no-instructions",
                ]
            ),
            cwd="/",
            capture_output=True,
            check=True,
            timeout=120,
        )
        self.pg_start()
        subprocess.run(  # noqa: S603
            [str(self.pg_bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres", DB_NAME],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def pg_start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.pg_port} -k {self.work} -c max_connections=100 "
            # No fsync: the machine does not crash in this test, only PostgreSQL does, and what
            # it wrote is in the kernel's page cache. synchronous_commit stays on: with it off,
            # a crash (stop -m immediate) loses transactions already reported committed.
            "-c fsync=off -c full_page_writes=off"
        )
        self._pg("-l", str(self.work / "postgres.log"), "-o", options, "-w", "-t", "60", "start")
        self.postmaster_pids.add(int((self.pgdata / "postmaster.pid").read_text().split()[0]))

    def pg_stop(self, mode: str = "fast") -> None:
        self._pg("-m", mode, "-w", "-t", "30", "stop")

    def sql(self) -> psycopg.Connection[Any]:
        return psycopg.connect(host="127.0.0.1", port=self.pg_port, user="postgres", dbname=DB_NAME, autocommit=True)

    # --- Redis ---------------------------------------------------------------------------

    def redis_start(self) -> None:
        self.redis_dir.mkdir(exist_ok=True)
        with (self.work / "redis.log").open("ab") as out:
            self.redis = self.spawn(
                [
                    "redis-server",
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(self.redis_port),
                    "--dir",
                    str(self.redis_dir),
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "everysec",
                    "--save",
                    "",
                    "--daemonize",
                    "no",
                ],
                out=out,
            )
        wait_for("Redis answers", lambda: self.redis_cli("ping") == "PONG", 20)

    def redis_stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.redis is not None
        self.redis.send_signal(sig)
        self.redis.wait(timeout=20)

    def redis_cli(self, *args: str) -> str:
        result = subprocess.run(  # noqa: S603 - redis-cli from PATH, like redis-server
            ["redis-cli", "-h", "127.0.0.1", "-p", str(self.redis_port), *args],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=5,
        )
        return result.stdout.strip()

    # --- localstripe ---------------------------------------------------------------------

    def stripe_start(self) -> None:
        with (self.work / "localstripe.log").open("ab") as out:
            self.stripe = self.spawn(
                [
                    PY,
                    str(ROOT / "tests" / "faults" / "localstripe_server.py"),
                    "--port",
                    str(self.stripe_port),
                    "--state",
                    str(self.work / "localstripe.pickle"),
                ],
                out=out,
            )
        wait_for(
            "localstripe answers",
            lambda: requests.get(f"{self.stripe_base}/js.stripe.com/v3/", timeout=1).status_code == 200,
            30,
        )
        # Webhook registrations are not part of its saved state (the Stripe dashboard's are).
        body = {"url": f"{self.base}/stripe/webhook/", "secret": WEBHOOK_SECRET, "events": WEBHOOK_EVENTS}
        requests.post(f"{self.stripe_base}/_config/webhooks/faults", json=body, timeout=10).raise_for_status()

    def stripe_stop(self) -> None:
        assert self.stripe is not None
        self.stripe.send_signal(signal.SIGCONT)
        self.stripe.kill()
        self.stripe.wait(timeout=20)

    def stripe_objects(self, kind: str) -> list[dict[str, Any]]:
        """Every object of a kind at localstripe (its list API, page by page)."""
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 100}
        while True:
            response = requests.get(f"{self.stripe_base}/v1/{kind}", params=params, auth=(STRIPE_KEY, ""), timeout=30)
            response.raise_for_status()
            page = response.json()
            found.extend(page["data"])
            if not page.get("has_more") or not page["data"]:
                return found
            params["starting_after"] = page["data"][-1]["id"]

    # --- the app -------------------------------------------------------------------------

    def manage(self, *args: str, timeout: float = 300, env: dict[str, str] | None = None) -> str:
        result = subprocess.run(  # noqa: S603
            [PY, "manage.py", *args],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def python(self, module: str, *, env: dict[str, str], timeout: float = 120) -> Any:
        """Run `python -m module` with the app's settings; its last stdout line, as JSON."""
        result = subprocess.run(  # noqa: S603
            [PY, "-m", module], cwd=ROOT, env={**self.env, **env}, capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            raise AssertionError(f"python -m {module} failed:\n{result.stdout}\n{result.stderr}")
        return json.loads(result.stdout.strip().splitlines()[-1])

    def web_start(self) -> None:
        with (self.work / "gunicorn.log").open("ab") as out:
            self.web = self.spawn([PY, "-m", "gunicorn", "-c", "python:skypemanager.gunicorn_conf"], out=out)
        wait_for("gunicorn answers", lambda: requests.get(f"{self.base}/healthz", timeout=2).status_code < 500, 60)
        wait_for("gunicorn has its 2 workers", lambda: len(self.web_workers()) == 2, 30)

    def web_workers(self) -> list[int]:
        assert self.web is not None
        children = Path(f"/proc/{self.web.pid}/task/{self.web.pid}/children").read_text().split()
        return sorted(int(pid) for pid in children)

    def celery_start(self) -> None:
        celery = [PY, "-m", "celery", "-A", "skypemanager"]
        self.worker = Supervised(
            name="celery worker",
            argv=[
                *celery,
                "worker",
                "--loglevel=INFO",
                "--concurrency=2",
                "--without-gossip",
                "--without-mingle",
                "--hostname",
                f"faults-{self.web_port}@%h",
            ],
            env=self.env,
            log=self.work / "worker.log",
            stack=self,
        )
        pidfile = self.work / "celerybeat.pid"
        self.beat = Supervised(
            name="celery beat",
            argv=[
                *celery,
                "beat",
                "--loglevel=INFO",
                "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler",
                "--pidfile",
                str(pidfile),
            ],
            env=self.env,
            log=self.work / "beat.log",
            stack=self,
            # As docker-compose does: a pidfile left by a killed beat would stop the next one.
            before_start=lambda: pidfile.unlink(missing_ok=True),
        )
        self.worker.start()
        self.beat.start()
        wait_for("the Celery worker is ready", lambda: " ready." in self.log("worker"), 60)

    def log(self, name: str) -> str:
        path = self.work / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def tasks_received(self) -> list[tuple[str, str]]:
        return re.findall(r"Task (\S+)\[([0-9a-f-]{36})\] received", self.log("worker"))

    def task_received_at(self, task_id: str, nth: int) -> float | None:
        """When (epoch seconds, from the worker's log) the task reached a worker the nth time."""
        stamps = re.findall(
            rf"^(\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d,\d{{3}}) .*Task \S+\[{re.escape(task_id)}\] received",
            self.log("worker"),
            flags=re.MULTILINE,
        )
        if len(stamps) < nth:
            return None
        moment = datetime.strptime(stamps[nth - 1], "%Y-%m-%d %H:%M:%S,%f").astimezone()
        return moment.timestamp()

    # --- teardown ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop everything this stack started, by pid, whatever state the test left it in."""
        for supervised in (self.worker, self.beat):
            if supervised is not None:
                with contextlib.suppress(Exception):
                    supervised.stop()
        if self.stripe is not None and self.stripe.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.stripe.send_signal(signal.SIGCONT)  # a frozen process cannot act on SIGTERM
        for proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = now() + 20
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - now()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if (self.pgdata / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self._pg("-m", "immediate", "-w", "-t", "20", "stop", check=False)
        for pid in self.postmaster_pids:
            if _is_our_postmaster(pid, self.pgdata):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _is_our_postmaster(pid: int, pgdata: Path) -> bool:
    """The pid is still this cluster's postmaster (not a reused pid, not another cluster)."""
    try:
        return str(pgdata).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@contextlib.contextmanager
def running_stack(work: Path) -> Iterator[Stack]:
    stack = Stack(work)
    try:
        yield stack
    finally:
        stack.close()
