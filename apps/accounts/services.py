from __future__ import annotations

import secrets
import threading
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import ApiKey
from apps.accounts.selectors import api_key_cache_clear, api_key_hash
from apps.audit.services import audit_record
from apps.companies.models import Company, Role
from apps.companies.selectors import actor_role
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError, PermissionRefused
from apps.core.text import clean_name

API_KEY_SCHEME = "sm"
_ROLE_RANK = {Role.VIEWER: 0, Role.BILLING: 1, Role.ADMIN: 2, Role.OWNER: 3}


def api_key_create(*, actor: Actor, company: Company, name: str, role: str) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret, which is never stored or shown again."""
    name = clean_name(name)
    if not name:
        raise ApplicationError("Give the key a name that says where it is used.", field="name")
    if role not in ApiKey.ROLES:
        raise ApplicationError("A key's role is admin, billing or viewer.", field="role")
    if actor.user is None or actor.api_key is not None:
        raise PermissionRefused("API keys are created by a signed-in member.")
    creator_role = actor_role(actor=actor, company=company)
    if creator_role is None or _ROLE_RANK[Role(role)] > _ROLE_RANK[Role(creator_role)]:
        raise PermissionRefused("You cannot create a key with more rights than your own.", field="role")
    prefix = f"{API_KEY_SCHEME}_{secrets.token_hex(4)}"
    key = f"{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            company=company,
            name=name[:80],
            role=role,
            prefix=prefix,
            key_hash=api_key_hash(key),
            created_by=actor.user,
        )
        audit_record(
            actor=actor,
            action="api_key.created",
            company=company,
            target=api_key,
            changes={"name": {"before": None, "after": api_key.name}, "role": {"before": None, "after": role}},
        )
    return api_key, key


def api_key_revoke(*, actor: Actor, api_key: ApiKey) -> ApiKey:
    with transaction.atomic():
        api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
        if api_key.revoked_at is not None:
            raise ApplicationError("This key is already revoked.", code="already_revoked")
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action="api_key.revoked", company=api_key.company, target=api_key)
        # Now, and again once committed (a request in between may have kept it once more).
        api_key_cache_clear()
        transaction.on_commit(api_key_cache_clear)
    return api_key


# When this process last recorded each key's use: the UPDATE below is skipped until a minute
# has passed, so a polling client costs no query for it (and the UPDATE's own condition keeps
# it to one write a minute across processes).
_touched: dict[str, datetime] = {}
_touched_lock = threading.Lock()


def api_key_touch(*, api_key: ApiKey, ip_address: str | None) -> None:
    """Record use at most once a minute per key: no query on the other requests of the minute."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION_SECONDS)
    last = _touched.get(api_key.key_hash)
    if last is not None and cutoff <= last <= now:
        return
    with _touched_lock:
        if len(_touched) >= 10_000:
            _touched.clear()
        _touched[api_key.key_hash] = now
    ApiKey.objects.filter(pk=api_key.pk).filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=cutoff)).update(
        last_used_at=now, last_used_ip=ip_address
    )
