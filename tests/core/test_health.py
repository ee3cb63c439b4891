"""/health/ (and /healthz): each dependency's state; 503 only for PostgreSQL and Redis."""

from __future__ import annotations

import socket
import threading

import pytest
from django.test import Client, override_settings

from tests.core.outages import closed_port

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_outage_state")]


def test_health_is_200_with_every_check_when_all_is_well() -> None:
    with override_settings(STRIPE_SECRET_KEY=""):
        response = Client().get("/health/")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["database"]["ms"] >= 0
    assert body["checks"]["redis"]["ok"] is True
    assert body["checks"]["stripe"] == {"ok": True, "configured": False, "ms": body["checks"]["stripe"]["ms"]}
    assert response["Cache-Control"].startswith("max-age=0")


def test_healthz_answers_the_same_as_health() -> None:
    with override_settings(STRIPE_SECRET_KEY=""):
        health, healthz = Client().get("/health/"), Client().get("/healthz")

    assert healthz.status_code == health.status_code == 200
    assert set(healthz.json()["checks"]) == set(health.json()["checks"])


def test_stripe_down_is_reported_without_making_health_fail() -> None:
    with override_settings(STRIPE_SECRET_KEY="sk_test_x", STRIPE_API_BASE=f"http://127.0.0.1:{closed_port()}"):
        response = Client().get("/health/")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["stripe"]["ok"] is False
    assert body["checks"]["stripe"]["error"]


def test_a_frozen_stripe_that_accepts_connections_but_never_answers_is_down_within_a_second() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()  # the kernel completes handshakes; nobody ever reads or answers
        port = listener.getsockname()[1]
        with override_settings(STRIPE_SECRET_KEY="sk_test_x", STRIPE_API_BASE=f"http://127.0.0.1:{port}"):
            response = Client().get("/health/")

    stripe = response.json()["checks"]["stripe"]
    assert stripe["ok"] is False
    assert stripe["ms"] < 1500


def test_stripe_is_asked_at_most_once_per_ten_seconds() -> None:
    answered = []

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def serve() -> None:
            while True:
                try:
                    peer, _ = listener.accept()
                except OSError:
                    return
                with peer:
                    peer.recv(1024)
                    peer.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    answered.append(1)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with override_settings(STRIPE_SECRET_KEY="sk_test_x", STRIPE_API_BASE=f"http://127.0.0.1:{port}"):
            first = Client().get("/health/").json()["checks"]["stripe"]
            second = Client().get("/health/").json()["checks"]["stripe"]

    assert first["ok"] is True
    assert second["ok"] is True
    assert second["cached"] is True
    assert len(answered) == 1
