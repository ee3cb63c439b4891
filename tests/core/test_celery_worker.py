"""Tasks run on a real Celery worker, through the real Redis broker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.companies.services import invitation_create
from apps.core.actor import Actor
from tests.factories import CompanyFactory, member
from tests.helpers.workers import celery_worker


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Path]:
    """A worker process on a queue of its own, writing e-mail to files."""
    mail_dir = tmp_path / "mail"
    env = {"TEST_EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend", "EMAIL_FILE_PATH": str(mail_dir)}
    with celery_worker(tmp_path / "worker.log", env=env):
        yield mail_dir


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
