"""A real Celery worker for a test: a process on the test's database and Redis, consuming a
queue of the test's own (no other worker listens to it), with the test process sending its
tasks there instead of running them in-process.

    with celery_worker(tmp_path / "worker.log") as worker:
        ...  # tasks queued on commit now run in that process

It is stopped by its own pid at the end (SIGTERM, then SIGKILL), also when the test fails,
and its log is printed then, so a failing test shows what the worker did.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection

from skypemanager.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Worker:
    queue: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def database_url() -> str:
    """The test database (pytest-django's, with its xdist suffix) as a DATABASE_URL."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@contextmanager
def celery_worker(
    log: Path, *, env: dict[str, str] | None = None, ready_timeout: float = 60, queue: str | None = None
) -> Iterator[Worker]:
    """Start the worker (solo pool: tasks run in that very process) and wait until it is ready.
    Workers started with one `queue` share it (a test of several workers at once)."""
    assert settings.CELERY_BROKER_URL.startswith("redis://"), "make test provides REDIS_URL"
    assert connection.vendor == "postgresql", "make test provides DATABASE_URL"
    queue = queue or f"test-{uuid.uuid4().hex[:12]}"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our own worker
            [
                sys.executable, "-m", "celery", "-A", "skypemanager", "worker", "-Q", queue, "--pool=solo",
                "--without-mingle", "--without-gossip", "--without-heartbeat", "--loglevel=INFO",
                "--hostname", f"{queue}-{uuid.uuid4().hex[:6]}@%h",
            ],
            cwd=ROOT,
            # TEST_CELERY_QUEUE: what the worker itself queues goes to its own queue too.
            env={
                **os.environ,
                "DATABASE_URL": database_url(),
                "PYTHONUNBUFFERED": "1",
                "TEST_CELERY_QUEUE": queue,
                **(env or {}),
            },
            stdout=output,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    worker = Worker(queue=queue, process=process, log=log)
    saved = {
        "task_always_eager": celery_app.conf.task_always_eager,
        "task_default_queue": celery_app.conf.task_default_queue,
    }
    celery_app.conf.update(task_always_eager=False, task_default_queue=queue)
    try:
        deadline = time.monotonic() + ready_timeout
        while " ready." not in worker.output():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Celery worker did not start:\n{worker.output()[-4000:]}")
            time.sleep(0.1)
        yield worker
    except BaseException:
        print(f"--- celery worker log ({log}):\n{worker.output()[-8000:]}")  # noqa: T201 - shown when the test fails
        raise
    finally:
        celery_app.conf.update(saved)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@contextmanager
def celery_beat(queue: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """celery beat as production runs it (the database scheduler, skypemanager/schedule.py), on
    the test's database, sending every periodic task to `queue`; stopped by its pid. It is not
    waited for: start it before the worker (`celery_worker(queue=...)`) and both start at once;
    what it sends waits in the queue until the worker is up."""
    pidfile = log.with_suffix(".pid")
    env = {**os.environ, "DATABASE_URL": database_url(), "PYTHONUNBUFFERED": "1", "TEST_CELERY_QUEUE": queue}
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our own beat
            [
                sys.executable, "-m", "celery", "-A", "skypemanager", "beat", "--loglevel=INFO",
                "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler", "--pidfile", str(pidfile),
            ],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield process
    except BaseException:
        print(f"--- celery beat log ({log}):\n{log.read_text(errors='replace')[-4000:]}")  # noqa: T201 - shown when the test fails
        raise
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
