from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from skypemanager.env import env_bool, env_choice, env_decimal, env_int, env_list, env_str

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("1", True), ("Off", False), ("no", False)])
def test_booleans_are_read_in_their_usual_spellings(monkeypatch, raw, expected) -> None:
    monkeypatch.setenv("FLAG", raw)
    assert env_bool("FLAG", default=not expected) is expected


@pytest.mark.parametrize(
    ("reader", "raw"),
    [
        (lambda: env_bool("VALUE", default=False), "maybe"),
        (lambda: env_int("VALUE", 5), "five"),
        (lambda: env_int("VALUE", 5, minimum=1), "0"),
        (lambda: env_int("VALUE", 5, maximum=10), "11"),
        (lambda: env_decimal("VALUE", Decimal("1")), "1,5"),
        (lambda: env_choice("VALUE", "a", {"a", "b"}), "c"),
    ],
)
def test_a_bad_value_fails_loudly_naming_the_variable(monkeypatch, reader, raw) -> None:
    monkeypatch.setenv("VALUE", raw)
    with pytest.raises(ImproperlyConfigured, match="VALUE"):
        reader()


def test_a_required_variable_that_is_missing_fails(monkeypatch) -> None:
    monkeypatch.delenv("REQUIRED_THING", raising=False)
    with pytest.raises(ImproperlyConfigured, match="REQUIRED_THING"):
        env_str("REQUIRED_THING")


def test_lists_are_comma_separated(monkeypatch) -> None:
    monkeypatch.setenv("HOSTS", " a.example, b.example ,,")
    assert env_list("HOSTS") == ["a.example", "b.example"]


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DEBUG", "SECRET_KEY"))}
    return subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "skypemanager.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


PRODUCTION = {
    "SECRET_KEY": "k3y-" + "a1B2c3D4e5F6g7H8i9J0" * 3,
    "ALLOWED_HOSTS": "portal.example.com",
    "DATABASE_URL": "postgres://u:p@127.0.0.1:1/db",
    "REDIS_URL": "redis://127.0.0.1:1/0",
}


def test_the_deploy_checks_pass_with_production_settings() -> None:
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key() -> None:
    result = _manage("check", env={k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"})

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_a_malformed_setting_stops_the_process_at_start() -> None:
    result = _manage("check", env={**PRODUCTION, "SECURE_HSTS_SECONDS": "a year"})

    assert result.returncode != 0
    assert "SECURE_HSTS_SECONDS must be an integer" in result.stderr


def test_the_csrf_check_finds_the_portals_csrf_middleware_by_class(settings: Any) -> None:
    from apps.core.checks import csrf_middleware_check

    settings.CSRF_COOKIE_SECURE = True  # as in production (not DEBUG)
    assert csrf_middleware_check() == []
    settings.MIDDLEWARE = [path for path in settings.MIDDLEWARE if not path.endswith("CsrfForBrowsers")]
    assert [w.id for w in csrf_middleware_check()] == ["core.W003"]
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.middleware.csrf.CsrfViewMiddleware"]
    settings.CSRF_COOKIE_SECURE = False
    assert [w.id for w in csrf_middleware_check()] == ["core.W016"]
