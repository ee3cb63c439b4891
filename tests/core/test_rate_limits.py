"""The API's rate limits (issue 12, item 4): one budget per API key (per user for sessions),
counted in Redis so that every process shares it; failed authentication limited per client
address; the client address taken from X-Forwarded-For only through our own proxies; 429 with
Retry-After in the error body. The last test runs two gunicorn servers on one Redis."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from apps.companies.models import Role
from tests.conftest import client_as
from tests.factories import CompanyFactory, api_key_for, member
from tests.faults.stack import free_ports, stop_process_group, wait_for

ROOT = Path(__file__).resolve().parents[2]


def bearer(key: str, address: str = "192.0.2.1", **headers: str) -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}", **headers)
    return client


def assert_throttled(response: Any) -> None:
    assert response.status_code == 429, response.content[:300]
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    body = response.json()
    assert set(body) == {"detail", "code", "errors"}
    assert body["code"] == "throttled"


# --- in one process --------------------------------------------------------------------------------


@pytest.mark.django_db
@override_settings(API_RATE_LIMIT="5/minute")
def test_each_api_key_has_a_budget_of_its_own_and_a_session_user_too(company, owner) -> None:
    _, first = api_key_for(company, Role.VIEWER, creator=owner)
    _, second = api_key_for(company, Role.VIEWER, creator=owner)
    session = client_as(owner)

    answers = [bearer(first).get("/api/v1/company/") for _ in range(7)]

    assert [r.status_code for r in answers] == [200] * 5 + [429] * 2
    assert_throttled(answers[-1])
    # The same creator's other key and their browser session are budgets of their own.
    assert [bearer(second).get("/api/v1/company/").status_code for _ in range(5)] == [200] * 5
    assert [session.get("/api/v1/company/").status_code for _ in range(6)] == [200] * 5 + [429]


@pytest.mark.django_db
@override_settings(API_AUTH_FAILURE_RATE="10/minute")
def test_sixty_bad_keys_in_a_row_from_one_address_get_429_after_the_limit(company, owner) -> None:
    _, good = api_key_for(company, Role.VIEWER, creator=owner)

    answers = [bearer(f"sm_deadbeef_{n:043d}").get("/api/v1/company/") for n in range(60)]

    assert [r.status_code for r in answers] == [401] * 10 + [429] * 50
    assert_throttled(answers[-1])
    # Past the limit even a right key from that address waits; from another it works.
    assert_throttled(bearer(good).get("/api/v1/company/"))
    assert bearer(good, address="192.0.2.2").get("/api/v1/company/").status_code == 200


@pytest.mark.django_db
@override_settings(API_AUTH_FAILURE_RATE="5/minute")
def test_without_trusted_proxies_x_forwarded_for_does_not_give_a_new_address(company) -> None:
    answers = [bearer("sm_deadbeef_x", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").get("/api/v1/company/") for n in range(8)]

    assert [r.status_code for r in answers] == [401] * 5 + [429] * 3


@pytest.mark.django_db
@override_settings(API_AUTH_FAILURE_RATE="5/minute", TRUSTED_PROXY_COUNT=1)
def test_behind_one_proxy_only_the_address_it_appended_counts(company) -> None:
    # The client writes what it likes to the left; our proxy appends the address it saw.
    spoofed = [
        bearer("sm_deadbeef_x", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}, 198.51.100.7").get("/api/v1/company/")
        for n in range(8)
    ]
    other_client = bearer("sm_deadbeef_x", HTTP_X_FORWARDED_FOR="203.0.113.1, 198.51.100.8").get("/api/v1/company/")

    assert [r.status_code for r in spoofed] == [401] * 5 + [429] * 3
    assert other_client.status_code == 401


# --- two server processes, one Redis ---------------------------------------------------------------


def _up(base: str, proc: subprocess.Popen[bytes]) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"the server for {base} exited with {proc.returncode}")
    return requests.get(f"{base}/healthz", timeout=2).status_code == 200


@pytest.fixture
def two_servers(transactional_db: Any, tmp_path: Path) -> Iterator[list[str]]:
    """Two gunicorn servers with production settings on free loopback ports, sharing the test
    database and the test's Redis database; stopped by their process group in any case."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "skypemanager.settings",
        "DEBUG": "true",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.CACHES["default"]["LOCATION"],
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "API_RATE_LIMIT": "20/minute",
        "API_AUTH_FAILURE_RATE": "10/minute",
        "TRUSTED_PROXY_COUNT": "1",
    }
    assert settings.CACHES["default"]["LOCATION"].startswith("redis://"), "needs the suite's Redis"
    procs: list[subprocess.Popen[bytes]] = []
    bases = []
    try:
        for port in free_ports(2):
            with (tmp_path / f"gunicorn-{port}.log").open("wb") as log:
                procs.append(
                    subprocess.Popen(  # noqa: S603 - our own server, fixed arguments
                        [
                            sys.executable,
                            "-m",
                            "gunicorn",
                            "--bind",
                            f"127.0.0.1:{port}",
                            "--workers",
                            "1",
                            "--threads",
                            "8",
                            "--timeout",
                            "60",
                            "skypemanager.wsgi:application",
                        ],
                        cwd=ROOT,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            bases.append(f"http://127.0.0.1:{port}")
        for base, proc in zip(bases, procs, strict=True):
            wait_for(f"{base} answers", functools.partial(_up, base, proc), 90, every=0.2)
        yield bases
    finally:
        for proc in procs:
            stop_process_group(proc)


def test_two_server_processes_share_one_budget_per_key_and_one_failure_count(two_servers) -> None:
    company = CompanyFactory()
    owner = member(company, Role.OWNER)
    _, key = api_key_for(company, Role.VIEWER, creator=owner)
    _, other_key = api_key_for(company, Role.VIEWER, creator=owner)

    def get(base: str, token: str, forwarded: str = "198.51.100.1") -> requests.Response:
        headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": forwarded}
        return requests.get(f"{base}/api/v1/company/", headers=headers, timeout=60)

    # 80 requests at once with one key, half to each server: a limit of 20 lets 20 through.
    with ThreadPoolExecutor(max_workers=16) as pool:
        burst = list(pool.map(lambda n: get(two_servers[n % 2], key), range(80)))

    codes = [r.status_code for r in burst]
    assert (codes.count(200), codes.count(429)) == (20, 60), codes
    for response in burst:
        if response.status_code == 429:
            assert_throttled(response)
    assert [get(base, key).status_code for base in two_servers] == [429, 429]
    assert [get(base, other_key).status_code for base in two_servers] == [200, 200]

    # Bad keys alternating between the servers, each with a new made-up address left of the
    # one our (pretend) proxy appended: ten 401s in all, then 429 on both.
    bad = [
        get(two_servers[n % 2], f"sm_deadbeef_{n:043d}", forwarded=f"203.0.113.{n}, 198.51.100.9") for n in range(30)
    ]
    assert [r.status_code for r in bad] == [401] * 10 + [429] * 20
    assert_throttled(bad[-1])
    assert get(two_servers[0], other_key, forwarded="203.0.113.1, 198.51.100.9").status_code == 429
    assert get(two_servers[1], other_key, forwarded="203.0.113.1, 198.51.100.10").status_code == 200
