"""CDR CSVs for the staff load, and a service-driven loader: cdr_import_create, then
cdr_import_run as the worker runs it."""

from __future__ import annotations

from typing import Any

from apps.cdrs.imports import COLUMNS
from apps.cdrs.services import cdr_import_create, cdr_import_run
from apps.core.actor import Actor
from apps.core.models import ImportJob

GOOD = {
    "node": "edge-1",
    "call_id": "a84b4c76e66710@pbx.example",
    "direction": "outbound",
    "caller": "+442079460958",
    "callee": "+14155550123",
    "start": "2026-01-05T10:00:00Z",
    "answer": "2026-01-05T10:00:07Z",
    "end": "2026-01-05T10:02:07Z",
    "duration": "127",
    "billable": "120",
    "sip_code": "200",
    "disposition": "answered",
    "auth_method": "registration",
    "source": "198.51.100.7",
}


def csv_row(edge_id: int, profile: object, **fields: Any) -> str:
    values = {**GOOD, "edge_id": str(edge_id), "profile": str(profile), **{k: str(v) for k, v in fields.items()}}
    return ",".join(values[column] for column in COLUMNS)


def cdr_csv(*rows: str) -> str:
    return ",".join(COLUMNS) + "\n" + "\n".join(rows) + "\n"


def big_cdr_csv(count: int, profiles: list[str]) -> str:
    """`count` answered outbound calls over a few profiles, each with its own callee."""
    lines = [",".join(COLUMNS)]
    for n in range(count):
        seconds = n % 3600
        lines.append(
            f"edge-big,{n + 1},call-{n}@pbx.example,{profiles[n % len(profiles)]},outbound,+442079460958,"
            f"+1415555{n % 10_000:04d},2026-01-05T10:00:00Z,2026-01-05T10:00:05Z,"
            f"2026-01-05T{10 + (seconds + 5) // 3600:02d}:{(seconds + 5) // 60 % 60:02d}:{(seconds + 5) % 60:02d}Z,"
            f"{seconds + 5},{seconds},200,answered,ip,192.0.2.{n % 250 + 1}"
        )
    return "\n".join(lines) + "\n"


def load(text: str, staff: Any) -> ImportJob:
    """Queue a load as staff do and run its task (in-process, as the worker would)."""
    job = cdr_import_create(actor=Actor(user=staff), filename="cdrs.csv", content=text.encode())
    cdr_import_run(job_id=job.pk)
    job.refresh_from_db()
    return job
