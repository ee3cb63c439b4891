"""Tasks run on a real Celery worker, through the real Redis broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from apps.companies.services import invitation_create
from apps.core.actor import Actor
from skypemanager.celery import app as celery_app
from tests.factories import CompanyFactory, member

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def worker(tmp_path: Path) -> Any:
    """A worker process on a queue of its own, writing e-mail to files."""
    assert settings.CELERY_BROKER_URL.startswith("redis://"), "make test provides REDIS_URL"
    assert connection.vendor == "postgresql", "make test provides DATABASE_URL"
    queue = f"test-{uuid.uuid4().hex[:12]}"
    mail_dir = tmp_path / "mail"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "TEST_EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
    }
    process = subprocess.Popen(  # noqa: S603 - our own worker
        [
            sys.executable, "-m", "celery", "-A", "skypemanager", "worker",
            "-Q", queue, "--pool=solo", "--without-mingle", "--without-gossip", "--loglevel=INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    saved = {
        "task_always_eager": celery_app.conf.task_always_eager,
        "task_default_queue": celery_app.conf.task_default_queue,
    }
    celery_app.conf.update(task_always_eager=False, task_default_queue=queue)
    try:
        yield mail_dir
    finally:
        celery_app.conf.update(saved)
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        print(output)  # noqa: T201 - shown when the test fails


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_sends_the_invitation_email_after_the_commit(worker: Path) -> None:
    company = CompanyFactory(name="Worker Test Ltd")
    owner = member(company)

    invitation_create(actor=Actor(user=owner), company=company, email="queued@example.com", role="viewer")

    deadline = time.monotonic() + 30
    messages: list[Path] = []
    while time.monotonic() < deadline and not messages:
        messages = list(worker.glob("*.log")) if worker.exists() else []
        time.sleep(0.2)
    assert messages, "the worker sent no e-mail within 30 s"
    body = messages[0].read_text()
    assert "To: queued@example.com" in body
    assert "Worker Test Ltd" in body
    assert "/invitations/" in body
