"""Raw SQL in migrations that only PostgreSQL runs: the triggers and constraints that guard
money and history. The laptop default (SQLite) goes without them; the services' checks stay."""

from __future__ import annotations

from typing import Any

from django.db import migrations


def _runner(sql: str) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        if sql and schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


def postgresql_sql(forward: str, backward: str = "") -> migrations.RunPython:
    """A migration operation running `forward` (and `backward` when unapplied) on PostgreSQL."""
    return migrations.RunPython(_runner(forward), _runner(backward))
