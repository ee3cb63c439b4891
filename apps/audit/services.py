"""Writing audit events. Called by every service inside its own transaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import models

from apps.audit.models import AuditEvent
from apps.companies.models import Company
from apps.core.actor import Actor


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, models.Model):
        return str(getattr(value, "public_id", value.pk))
    if hasattr(value, "code"):  # django-countries Country
        return value.code
    return value


def snapshot(instance: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    return {name: _jsonable(getattr(instance, name)) for name in fields}


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The fields whose value changed, as {"field": {"before": old, "after": new}}."""
    return {
        name: {"before": before.get(name), "after": after.get(name)}
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    }


def audit_record(
    *,
    actor: Actor,
    action: str,
    company: Company | None,
    target: models.Model | None = None,
    changes: Mapping[str, Any] | None = None,
    actor_label: str | None = None,
) -> AuditEvent:
    """Write one audit event. Call it inside the transaction that makes the change."""
    return AuditEvent.objects.create(
        company=company,
        actor_user=actor.user,
        actor_api_key=actor.api_key,
        actor_label=(actor_label or actor.label)[:200],
        action=action,
        object_type=target._meta.label_lower if target is not None else "",
        object_id=str(getattr(target, "public_id", getattr(target, "pk", ""))) if target is not None else "",
        object_repr=str(target)[:200] if target is not None else "",
        changes={key: _jsonable_tree(value) for key, value in (changes or {}).items()},
        ip_address=actor.ip_address,
        user_agent=actor.user_agent,
    )


def _jsonable_tree(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _jsonable_tree(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable_tree(item) for item in value]
    return _jsonable(value)
