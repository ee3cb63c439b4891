"""The status page and /health/ (issue 14, item 5): edge nodes up or down, CDR import and rating
lag, the broker's queue depth and the Stripe webhook inbox, each against the rows or the real
service; /health/ 503 naming what failed, with real unreachable services (closed loopback ports)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import time_machine
from django.conf import settings
from django.test import Client, override_settings

from apps.billing.models import StripeEvent
from apps.cdrs.models import Cdr, PendingCdr
from apps.companies.models import Role
from apps.edge.models import EdgeCdrWatermark, EdgeNode
from skypemanager.celery import app as celery_app
from tests.cdrs.factories import cdr_csv, csv_row, load
from tests.core.outages import closed_port, redis_down
from tests.factories import UserFactory, member
from tests.sip_profiles.factories import digest_profile

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_outage_state")]


def unreachable_node(name: str = "edge-down", role: str = EdgeNode.Role.SECONDARY) -> EdgeNode:
    """A node whose JSON-RPC port refuses connections (nobody listens on it)."""
    return EdgeNode.objects.create(
        name=name,
        role=role,
        sip_host="127.0.0.1",
        rpc_url=f"http://127.0.0.1:{closed_port()}/RPC",
        database_url=f"postgres://edge@127.0.0.1:{closed_port()}/edge",
    )


def status_page(user: Any) -> Any:
    client = Client()
    client.force_login(user)
    response = client.get("/status/")
    assert response.status_code == 200
    return response


def test_any_member_sees_the_status_page_and_an_unreachable_node_is_down_with_why(company) -> None:
    node = unreachable_node()
    EdgeCdrWatermark.objects.create(node=node, last_id=4321, imported_at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    viewer = member(company, Role.VIEWER)

    status_page(viewer)  # the process's first page (templates compiled)
    started = time.monotonic()
    response = status_page(viewer)
    elapsed = time.monotonic() - started
    status, html = response.context["status"], response.content.decode()

    [down] = status.nodes
    assert (down.node, down.up) == ("edge-down", False)
    assert "refused" in down.error.lower() or "connection" in down.error.lower()
    assert status.nodes_down == 1
    [imported] = status.imports
    assert (imported.node, imported.last_id) == ("edge-down", 4321)
    assert '<span class="badge failed">Down</span>' in html
    assert "#4,321" in html
    assert elapsed < 2


def test_signed_out_visitors_are_sent_to_sign_in() -> None:
    response = Client().get("/status/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_the_rating_lag_is_the_age_of_the_oldest_call_waiting_to_be_rated(company, owner) -> None:
    profile, _ = digest_profile(company, owner)
    staff = UserFactory(is_staff=True, is_superuser=True)
    # Loaded inside the test's transaction: the rating task queued on commit never runs.
    load(
        cdr_csv(
            csv_row(
                1,
                profile.sip_username,
                start="2026-11-02T08:00:00Z",
                answer="",
                end="2026-11-02T08:00:30Z",
                duration=30,
                billable=0,
                sip_code=486,
                disposition="busy",
            ),
            csv_row(
                2,
                profile.sip_username,
                call_id="second@pbx",
                start="2026-11-02T09:00:00Z",
                answer="2026-11-02T09:00:05Z",
                end="2026-11-02T09:02:05Z",
                duration=125,
            ),
        ),
        staff,
    )
    waiting = Cdr.objects.filter(pk__in=PendingCdr.objects.values("cdr_id"))
    assert waiting.count() == 2
    oldest_end = min(cdr.ended_at for cdr in waiting)
    now = datetime(2026, 11, 2, 10, 30, tzinfo=UTC)

    with time_machine.travel(now, tick=False):
        status = status_page(owner).context["status"]

    assert status.rating.waiting == 2
    assert status.rating_lag == now - oldest_end == timedelta(hours=2, minutes=29, seconds=30)
    assert status.rating_lag_text == "2 h 29 min"


def test_nothing_waiting_means_no_rating_lag(owner) -> None:
    status = status_page(owner).context["status"]
    assert status.rating.waiting == 0
    assert status.rating_lag is None


def test_the_queue_depth_is_what_waits_in_the_real_broker(owner) -> None:
    queue = f"status-test-{uuid.uuid4().hex[:8]}"
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        with override_settings(CELERY_TASK_DEFAULT_QUEUE=queue):
            for n in range(3):  # published as any request publishes a task; no worker reads this queue
                celery_app.send_task("apps.core.tasks.nothing", args=[n], queue=queue)
            [depth] = status_page(owner).context["status"].queues
        assert broker.llen(queue) == 3
    finally:
        broker.delete(queue)
        broker.close()

    assert (depth.queue, depth.waiting, depth.error) == (queue, 3, "")


def test_a_broker_that_does_not_answer_gives_an_unknown_depth_not_an_error(owner) -> None:
    with override_settings(CELERY_BROKER_URL=f"redis://127.0.0.1:{closed_port()}/0"):
        [depth] = status_page(owner).context["status"].queues
    assert depth.waiting is None
    assert depth.error.startswith("broker unavailable")


def test_unprocessed_payment_events_are_the_inbox_rows_not_processed(owner) -> None:
    rows = [("received", None), ("received", None), ("failed", None), ("processed", datetime.now(UTC))]
    for n, (state, processed_at) in enumerate(rows):
        StripeEvent.objects.create(
            event_id=f"evt_status_{n}",
            type="payment_intent.succeeded",
            payload={},
            status=state,
            processed_at=processed_at,
        )
    oldest = min(e.received_at for e in StripeEvent.objects.exclude(status="processed"))

    payments = status_page(owner).context["status"].payments

    assert (payments.received, payments.failed) == (2, 1)
    assert payments.oldest_at == oldest


def test_health_is_200_and_names_no_edge_entry_without_nodes() -> None:
    with override_settings(STRIPE_SECRET_KEY=""):
        response = Client().get("/health/")
    assert response.status_code == 200
    assert "edge" not in response.json()["checks"]


def test_health_is_503_naming_the_edge_node_that_does_not_answer_and_healthz_stays_200() -> None:
    unreachable_node("edge-b")

    with override_settings(STRIPE_SECRET_KEY=""):
        started = time.monotonic()
        health = Client().get("/health/")
        elapsed = time.monotonic() - started
        healthz = Client().get("/healthz")

    assert health.status_code == 503
    edge = health.json()["checks"]["edge"]
    assert edge["ok"] is False
    assert edge["nodes"]["edge-b"]["ok"] is False
    assert edge["error"].startswith("edge-b: ")
    assert health.json()["status"] == "degraded"
    assert elapsed < 2.5
    # The web container's own probe: the edge does not stop this process serving.
    assert healthz.status_code == 200
    assert "edge" not in healthz.json()["checks"]


def test_health_names_both_redis_and_the_edge_when_both_are_down() -> None:
    unreachable_node("edge-c")
    with override_settings(STRIPE_SECRET_KEY=""), redis_down():
        response = Client().get("/health/")

    assert response.status_code == 503
    checks = response.json()["checks"]
    failed = sorted(name for name, check in checks.items() if not check["ok"])
    assert failed == ["edge", "redis"]
    assert checks["database"]["ok"] is True
