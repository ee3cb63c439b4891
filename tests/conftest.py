from __future__ import annotations

import importlib
import os
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.companies.models import Company, Role
from tests.factories import CompanyFactory, member

# The manage.py processes tests start read no .env (a developer's `make run` writes one with
# DEBUG=true, which would change what they test).
os.environ["ENV_FILE"] = ""

# Playwright's sync API runs an event loop in the test thread; the ORM calls the
# tests make around it are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/lib/chromium/chromium")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM if os.path.exists(CHROMIUM) else "/usr/bin/chromium",
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ],
    }


# Data migrations that seed staff-editable tables. Tests with transaction=True
# truncate every table afterwards, so the seeds are put back before each test.
SEED_MIGRATIONS = (
    "apps.companies.migrations.0002_seed_purchase_policies",
    "apps.billing.migrations.0002_seed_prices",
    "apps.callerid.migrations.0002_seed_countries",
    "apps.rating.migrations.0002_seed_blocked_prefixes",
)


@pytest.fixture(autouse=True)
def _seeded_tables(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("django_db") is None:
        return  # pytest-django's own autouse fixture has opened the database for marked tests
    from django.apps import apps as django_apps

    from apps.billing.models import Price
    from apps.callerid.models import CallerIdCountry
    from apps.companies.models import PurchasePolicy
    from apps.rating.models import BlockedPrefix

    seeded = (PurchasePolicy, Price, CallerIdCountry, BlockedPrefix)
    if all(model.objects.exists() for model in seeded):
        return
    for module in SEED_MIGRATIONS:
        importlib.import_module(module).seed(django_apps, None)


@pytest.fixture
def company(db: Any) -> Company:
    return CompanyFactory()


@pytest.fixture
def owner(company: Company) -> Any:
    return member(company, Role.OWNER)


@pytest.fixture
def other_company(db: Any) -> Company:
    return CompanyFactory(name="Other Company Ltd")


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def owner_api(api: APIClient, owner: Any) -> APIClient:
    api.force_login(owner)
    return api


def client_as(user: Any) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture(autouse=True)
def _clean_cache() -> None:
    """Rate-limit counters live in the cache (Redis in the suite): start each test clean."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _celery_join_allowed() -> None:
    """Celery keeps "a task is running here, so never wait on a result" in one process-wide flag,
    which an eager task sets and then restores. Two eager tasks run at once by a live server's
    request threads can restore it in the wrong order and leave it set, and every later test in
    that process then fails on `.get()` (seen in a full run). Each test starts with it clear."""
    from celery._state import _set_task_join_will_block

    _set_task_join_will_block(False)
