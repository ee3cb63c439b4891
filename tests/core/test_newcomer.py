"""What a newcomer meets around `make run` (issue 13, item 10): manage.py in a fresh shell uses
the .env that `make run` writes, the terminal is not filled with 4xx warnings or doubled lines,
and browsers get an icon instead of a 404."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.contrib.staticfiles import finders
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]


def _manage(directory: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own manage.py, with arguments from this file
        [sys.executable, str(directory / "manage.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=directory,
    )


def test_manage_py_in_a_fresh_shell_reads_the_env_file_beside_it(tmp_path: Path) -> None:
    # A fresh shell: none of the settings in the environment, the project importable.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "SECRET_KEY", "SITE_URL", "ENV_FILE"} and "DJANGO" not in k
    }
    env["PYTHONPATH"] = str(ROOT)
    shutil.copy(ROOT / "manage.py", tmp_path / "manage.py")
    show = ["shell", "-c", "from django.conf import settings; print(settings.DEBUG, settings.SITE_URL)"]

    without = _manage(tmp_path, *show, env=env)
    # DEBUG off without it: production's rules, which want a SECRET_KEY.
    assert without.returncode != 0
    assert "SECRET_KEY" in without.stderr

    (tmp_path / ".env").write_text("# as make run writes it\nDEBUG=true\nSITE_URL=http://127.0.0.1:8765\n")
    with_env = _manage(tmp_path, *show, env=env)
    assert with_env.returncode == 0, with_env.stderr
    assert with_env.stdout.split()[-2:] == ["True", "http://127.0.0.1:8765"]

    # What the environment says wins over the file.
    overridden = _manage(tmp_path, *show, env={**env, "SITE_URL": "http://127.0.0.1:9000"})
    assert overridden.stdout.split()[-2:] == ["True", "http://127.0.0.1:9000"]


def test_the_favicon_is_the_apps_icon_not_a_404(client: Client, db: Any) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith("img/favicon.svg")
    assert finders.find("img/favicon.svg")


def test_expected_4xx_answers_log_nothing_and_django_lines_print_once(client: Client, caplog: Any, db: Any) -> None:
    caplog.set_level(logging.INFO)
    assert client.get("/no-such-page/").status_code == 404
    assert client.get("/api/v1/sip-profiles/").status_code in (401, 403)

    assert not [r for r in caplog.records if r.name.startswith("django.request")]
    # Django's default adds a console handler of its own under DEBUG; the root's prints its lines.
    assert logging.getLogger("django").handlers == []
    assert logging.getLogger().handlers


def test_laptop_e_mails_print_readably_between_rulers() -> None:
    from io import StringIO

    from django.core.mail import EmailMessage

    from apps.core.mail import RULE, ConsoleEmailBackend

    out = StringIO()
    message = EmailMessage(
        subject="Auto-recharge charged 50.00 GBP",
        body="Your card ending 4242 was charged £50.00 — the balance fell below 10.00 GBP.\n",
        from_email="Skype Manager <no-reply@example.com>",
        to=["billing@example.com"],
    )
    message.attach("receipt.pdf", b"%PDF-1.4", "application/pdf")
    assert ConsoleEmailBackend(stream=out).send_messages([message]) == 1

    printed = out.getvalue()
    assert f"{RULE}\nE-MAIL  to billing@example.com\nSubject: Auto-recharge charged 50.00 GBP\n" in printed
    # The body as written (Django's console backend prints it quoted-printable: "=C2=A350.00").
    assert "charged £50.00 — the balance" in printed
    assert "[attached: receipt.pdf]" in printed
