"""Edge writes: node and carrier rows, and pushing desired state to the nodes."""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from apps.core.enqueue import enqueue, enqueue_on_commit
from apps.core.exceptions import ApplicationError
from apps.edge import clients, selectors
from apps.edge.models import Carrier, EdgeNode, EdgeProvisioning
from apps.edge.provisioning import provisioning_mark_pending
from apps.edge.reloads import address_reload_if_pending, address_reload_pending, address_reload_request
from apps.sip_profiles.models import SipProfile

logger = logging.getLogger(__name__)

# Kamailio's module tables the config uses, standard (the `version` table) first.
KAMAILIO_MODULES = ["standard", "auth_db", "permissions", "usrloc", "dispatcher", "htable", "acc"]
OUR_SCHEMA = Path(settings.BASE_DIR) / "deploy" / "kamailio" / "edge-schema.sql"


class EdgeNodeConfigError(ValueError):
    """A node row that Kamailio cannot be started from (what is missing is said)."""


@dataclass
class NodeResult:
    node: str
    changes: list[str] = field(default_factory=list)
    error: str = ""


# --- Nodes and carriers --------------------------------------------------------------


def edge_node_upsert(*, name: str, **fields: Any) -> tuple[EdgeNode, bool]:
    """Add the node, or update the given fields of the one of that name."""
    node, created = EdgeNode.objects.update_or_create(name=name, defaults=fields)
    return node, created


def carrier_upsert(*, name: str, **fields: Any) -> tuple[Carrier, bool]:
    if "inbound_from" in fields:
        fields["inbound_from"] = clean_inbound_from(fields["inbound_from"])
    with transaction.atomic():
        carrier, created = Carrier.objects.update_or_create(name=name, defaults=fields)
        carriers_changed()
    return carrier, created


def carriers_changed() -> None:
    """A carrier was added, changed or removed: on commit, every node gets the carriers
    (dispatcher set 1, reloaded) and their inbound sources at once, not at the next
    reconciliation. Best effort: a lost task leaves it to the reconciliation (every 5 min)."""
    if not settings.EDGE_SYNC_ENABLED:
        return
    # apps.edge.tasks imports this module (import cycle).
    from apps.edge.tasks import edge_sync_global_task

    enqueue_on_commit(edge_sync_global_task)


def clean_inbound_from(entries: Any) -> list[str]:
    """A carrier's inbound sources as canonical networks ("198.51.100.0/28", "192.0.2.7/32");
    a bad entry is refused, naming it."""
    cleaned = []
    for entry in entries or []:
        try:
            cleaned.append(str(ipaddress.ip_network(str(entry).strip(), strict=False)))
        except ValueError:
            raise ApplicationError(
                f"{entry!r} is not an IP address or network (e.g. 198.51.100.0/28).", field="inbound_from"
            ) from None
    return sorted(set(cleaned))


def edge_db_init(*, node: EdgeNode) -> list[str]:
    sql_dir = Path(settings.EDGE_KAMAILIO_SQL_DIR)
    files = [sql_dir / f"{module}-create.sql" for module in KAMAILIO_MODULES]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise clients.EdgeNodeError(f"Kamailio's SQL files are missing (kamailio-postgres-modules?): {missing}")
    return clients.node_schema_apply(node.database_url, files, OUR_SCHEMA)


# --- Sync ----------------------------------------------------------------------------


def profile_changed(profile_id: int) -> None:
    """sip_profiles' provisioning listener: on commit, queue the sync (best effort: a lost
    one is left pending and the reconciliation picks it up)."""
    provisioning_mark_pending(profile_id)
    if not settings.EDGE_SYNC_ENABLED:
        return
    # apps.edge.tasks imports this module (import cycle).
    from apps.edge.tasks import edge_sync_profile_task

    enqueue(edge_sync_profile_task, profile_id)


def _tell_node(node: EdgeNode, changes: clients.ProfileChanges) -> None:
    """Per-key htable updates, inside the node's write transaction (see node_profile_write).
    The address table has no per-key form: its reload is asked for after the commit (debounced
    per node, apps.edge.reloads). The subscriber table needs nothing: auth_db reads it on every
    request."""
    for key, (vtype, value) in changes.set_attrs.items():
        if vtype == selectors.INT:
            clients.rpc(node.rpc_url, "htable.seti", "prof", key, int(value))
        else:
            clients.rpc(node.rpc_url, "htable.sets", "prof", key, value)
    for key in changes.deleted_attrs:
        clients.rpc_htable_delete(node.rpc_url, "prof", key)


def edge_sync_profile(*, profile_id: int, node_names: list[str] | None = None) -> list[NodeResult]:
    """Push one profile's desired state to each node (one transaction per node), tell the
    node, and record per node where the profile stands. Network work happens outside any
    portal transaction. Its cost depends on this profile only.

    Two syncs of one profile never interleave: the whole sync (reading the desired state
    included) holds the profile's lock, so a sync that read the state before a change cannot
    write it after the sync that read the change (which would leave the node behind)."""
    with profile_sync_lock(profile_id):
        state = selectors.profile_edge_state(profile_id=profile_id)
        exists = SipProfile.objects.filter(pk=profile_id).exists()
        results = []
        for node in selectors.edge_nodes(names=node_names):
            result = NodeResult(node=node.name)
            try:
                changes = clients.node_profile_write(
                    node.database_url, state, before_commit=functools.partial(_tell_node, node)
                )
                # After the commit: it reads the committed routes under the keys' locks.
                clients.node_routes_apply(node.database_url, node.rpc_url, changes.set_routes + changes.deleted_routes)
                # Also when an earlier reload of this node failed (the rows are in place, so
                # this sync found no difference, but the node may not have loaded them).
                if changes.addresses or address_reload_pending(node):
                    address_reload_request(node)
                result.changes = changes.describe()
            except clients.EdgeNodeError as exc:
                result.error = str(exc)
                logger.warning("edge sync of profile %s on %s failed: %s", profile_id, node.name, exc)
            if exists:
                _record(profile_id=profile_id, node=node, error=result.error)
            results.append(result)
        if exists:
            _record_summary(profile_id)
    return results


# pg_advisory_lock(key) namespaces in the portal's database: a profile's sync (+ its id), and
# the push of the blocked list.
PROFILE_SYNC_LOCK = 7303 << 32
BLOCKED_SYNC_LOCK = 7304 << 32


def profile_sync_lock(profile_id: int) -> AbstractContextManager[None]:
    return sync_lock(PROFILE_SYNC_LOCK + profile_id, what=f"profile {profile_id}")


@contextmanager
def sync_lock(key: int, *, what: str) -> Iterator[None]:
    """A session-level advisory lock on the portal's database, held for the whole sync (no
    transaction is held open across the network calls). A worker that dies loses its
    connection, and with it the lock, so nothing waits for a dead sync. Other databases
    (SQLite on a laptop, where tasks run in-process one at a time) need none."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [key])
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        except DatabaseError:
            logger.warning("could not release the sync lock of %s (connection lost: it is gone)", what)


def _record(*, profile_id: int, node: EdgeNode, error: str) -> None:
    with transaction.atomic():
        row, _ = EdgeProvisioning.objects.select_for_update().get_or_create(profile_id=profile_id, node=node)
        if error:
            row.state = EdgeProvisioning.State.FAILED
            row.error = error
            row.attempts += 1
        else:
            row.state = EdgeProvisioning.State.SYNCED
            row.synced_at = timezone.now()
            row.error = ""
            row.attempts = 0
        row.save(update_fields=["state", "error", "attempts", "synced_at", "updated_at"])


def _record_summary(profile_id: int) -> None:
    """The profile's single field (still shown today) sums the nodes up."""
    states = set(EdgeProvisioning.objects.filter(profile_id=profile_id).values_list("state", flat=True))
    if EdgeProvisioning.State.FAILED in states:
        summary, error = SipProfile.Provisioning.FAILED, "Provisioning failed on at least one SIP edge node."
    elif states == {EdgeProvisioning.State.SYNCED}:
        summary, error = SipProfile.Provisioning.SYNCED, ""
    else:
        summary, error = SipProfile.Provisioning.PENDING, ""
    SipProfile.objects.filter(pk=profile_id).update(provisioning_state=summary, provisioning_error=error)


def edge_sync_global(*, node_names: list[str] | None = None) -> list[NodeResult]:
    """The lists every profile shares: blocked numbers (per key, edge_sync_blocked), carriers
    (dispatcher reload) and the carriers' inbound sources (address reload). All are small
    and change rarely."""
    with sync_lock(BLOCKED_SYNC_LOCK, what="the blocked list"):
        return _edge_sync_global(node_names=node_names)


def _edge_sync_global(*, node_names: list[str] | None) -> list[NodeResult]:
    blocked = _blocked_read()
    destinations = selectors.carrier_destinations()
    sources = selectors.carrier_sources()
    results = []
    for node in selectors.edge_nodes(names=node_names):
        result = NodeResult(node=node.name)
        try:
            result.changes += _blocked_push(node, blocked)
            # Compared with what the node holds in memory too: a reload that failed after the
            # rows were committed (refused within reload_delta, node briefly unreachable) is
            # done by the next run, which finds the rows in place.
            written = clients.node_carriers_write(node.database_url, destinations)
            if written or clients.rpc_dispatcher_targets(node.rpc_url) != sorted(destinations):
                clients.rpc_reload(node.rpc_url, "dispatcher.reload")
                result.changes.append(f"carriers: {len(destinations)}")
            # The address table's reload is the debounced one profiles use (a failed one stays
            # pending and is retried; see apps.edge.reloads).
            if clients.node_carrier_sources_write(node.database_url, sources):
                address_reload_request(node)
                result.changes.append(f"carrier sources: {len(sources)}")
        except clients.EdgeNodeError as exc:
            result.error = str(exc)
        results.append(result)
    return results


# --- The blocked list ----------------------------------------------------------------

# Set while a push of the blocked list is queued and has not started reading the list: a
# change committed meanwhile rides on it. The TTL frees the key of a push that was lost.
BLOCKED_PUSH_QUEUED = "edge:blocked-push:queued"
BLOCKED_PUSH_QUEUED_TTL = 60
# Above this many changed keys on a node, one htable.reload (after the commit) costs less
# than a JSON-RPC call per key (a staff bulk change).
BLOCKED_PER_KEY_MAX = 200


def blocked_prefixes_changed() -> None:
    """rating's blocked-list listener, called after a change commits: push the list to every
    node now. Debounced: one push is queued at a time, and it reads the list when it starts, so
    a thousand changes committed while it waits cost one push, not a thousand."""
    if not settings.EDGE_SYNC_ENABLED:
        return
    if not cache.add(BLOCKED_PUSH_QUEUED, 1, BLOCKED_PUSH_QUEUED_TTL):
        return  # a queued push has not read the list yet: it will read this change
    # apps.edge.tasks imports this module (import cycle).
    from apps.edge.tasks import edge_sync_blocked_task

    if not enqueue(edge_sync_blocked_task):
        cache.delete(BLOCKED_PUSH_QUEUED)  # not queued (broker down): the reconciliation pushes it


def _blocked_read() -> dict[str, str]:
    # Cleared before the list is read: a change committed from here on queues a push of its
    # own; one committed before is in what is read now.
    cache.delete(BLOCKED_PUSH_QUEUED)
    return selectors.blocked_edge_entries()


def _blocked_tell(node: EdgeNode, changes: clients.BlockedChanges) -> None:
    """Per-key htable updates inside the node's write transaction (as _tell_node); a bulk
    change is reloaded after the commit instead (_blocked_push)."""
    if len(changes.set_keys) + len(changes.deleted_keys) > BLOCKED_PER_KEY_MAX:
        return
    for key, reason in changes.set_keys.items():
        clients.rpc(node.rpc_url, "htable.sets", "blocked", key, reason)
    for key in changes.deleted_keys:
        clients.rpc_htable_delete(node.rpc_url, "blocked", key)


def _blocked_push(node: EdgeNode, entries: dict[str, str], *, reload: bool = False) -> list[str]:
    changes = clients.node_blocked_write(
        node.database_url, entries, before_commit=functools.partial(_blocked_tell, node)
    )
    count = len(changes.set_keys) + len(changes.deleted_keys)
    # `reload`: a retry after a failed reload, whose rows are already in place (no difference left).
    if reload or count > BLOCKED_PER_KEY_MAX:
        clients.rpc(node.rpc_url, "htable.reload", "blocked")
    if not changes:
        return []
    return [f"blocked list: {len(changes.set_keys)} set, {len(changes.deleted_keys)} deleted ({len(entries)} entries)"]


def edge_sync_blocked(*, node_names: list[str] | None = None, reload: bool = False) -> list[NodeResult]:
    """Push the blocked list (apps.rating BlockedPrefix, as selectors.blocked_edge_entries
    spells it) to each node: its rows and its htable, per key.

    Two pushes never interleave (the lock, held from reading the list to the last node): one
    that read the list before a change cannot write it after the push that read the change."""
    with sync_lock(BLOCKED_SYNC_LOCK, what="the blocked list"):
        entries = _blocked_read()
        results = []
        for node in selectors.edge_nodes(names=node_names):
            result = NodeResult(node=node.name)
            try:
                result.changes = _blocked_push(node, entries, reload=reload)
            except clients.EdgeNodeError as exc:
                result.error = str(exc)
                logger.warning("blocked list push to %s failed: %s", node.name, exc)
            results.append(result)
    return results


# --- Reconciliation ------------------------------------------------------------------

RECONCILE_CURSOR = "edge:reconcile:cursor"


@dataclass
class ReconcileResult:
    checked: int = 0
    repaired: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    wrapped: bool = False


def edge_reconcile(*, batch_size: int = 200) -> ReconcileResult:
    """Compare desired state with every node and repair drift, a bounded batch per run.

    First the profiles not known to be in sync (marked pending, or failed on a node that may
    be back), then the next slice of all profiles by id (deleted ones too: their rows must be
    gone from the nodes), continuing where the last run stopped (a cursor in the cache), so
    every profile is checked once per cycle. A row changed or deleted by hand on a node comes
    back because the sync compares the node's rows, not a record of what it wrote.
    """
    result = ReconcileResult()
    behind = list(
        SipProfile.objects.filter(
            provisioning_state__in=[SipProfile.Provisioning.PENDING, SipProfile.Provisioning.FAILED]
        )
        .order_by("pk")
        .values_list("pk", flat=True)[: batch_size // 2]
    )
    after = int(cache.get(RECONCILE_CURSOR) or 0)
    ids = list(
        SipProfile.objects.filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)[: batch_size - len(behind)]
    )
    if len(ids) < batch_size - len(behind):
        result.wrapped = True
        cache.set(RECONCILE_CURSOR, 0, None)
    elif ids:
        cache.set(RECONCILE_CURSOR, ids[-1], None)
    edge_sync_global()
    for node in selectors.edge_nodes():
        try:
            address_reload_if_pending(node)
        except clients.EdgeNodeError as exc:
            logger.warning("address reload of %s failed: %s", node.name, exc)
    for pid in dict.fromkeys(behind + ids):
        results = edge_sync_profile(profile_id=pid)
        result.checked += 1
        if any(r.error for r in results):
            result.failed.append(pid)
        elif any(r.changes for r in results):
            result.repaired.append(pid)
    return result


# --- Running a node ------------------------------------------------------------------


def kamailio_command(node: EdgeNode, *, runtime_dir: str, extra_defines: Sequence[str] = ()) -> list[str]:
    """The kamailio command line for a node: everything node-specific as -A defines (and any
    `extra_defines`, e.g. the tests' shorter timers)."""
    rpc = urlsplit(node.rpc_url)
    defines = [
        f'EDGE_NODE="{node.name}"',
        f'EDGE_DB_URL="{clients.kamailio_db_url(node.database_url)}"',
        f'EDGE_CDR_DB="cdr=>{clients.kamailio_db_url(node.database_url)}"',
        f"EDGE_SIP_IP={node.sip_host}",
        f"EDGE_SIP_PORT={node.sip_port}",
        f"EDGE_RPC_IP={rpc.hostname or '127.0.0.1'}",
        f"EDGE_RPC_PORT={rpc.port or 5071}",
        f'EDGE_DOMAIN="{settings.SIP_DOMAIN}"',
    ]
    if node.rtpengine:
        defines += ["WITH_RTPENGINE", f'EDGE_RTPENGINE="udp:{node.rtpengine}"']
    if node.tls_port:
        if not (node.tls_certificate and node.tls_private_key):
            raise EdgeNodeConfigError(
                f"edge node {node.name!r} has a TLS port but no TLS certificate and private key "
                "(edge_node add ... --tls-certificate PATH --tls-private-key PATH)"
            )
        defines += [
            "WITH_TLS",
            f"EDGE_TLS_PORT={node.tls_port}",
            f'EDGE_TLS_CERT="{node.tls_certificate}"',
            f'EDGE_TLS_KEY="{node.tls_private_key}"',
        ]
    defines += list(extra_defines)
    command = ["kamailio", "-f", settings.EDGE_KAMAILIO_CFG, "-DD", "-E", "-m", "512", "-M", "16", "-Y", runtime_dir]
    for define in defines:
        command += ["-A", define]
    return command


def rtpengine_command(node: EdgeNode) -> list[str] | None:
    if not node.rtpengine:
        return None
    return [
        "rtpengine",
        "--config-file=none",
        "--foreground",
        "--table=-1",
        f"--interface={node.sip_host}",
        f"--listen-ng={node.rtpengine}",
        f"--port-min={settings.EDGE_RTP_PORT_MIN}",
        f"--port-max={settings.EDGE_RTP_PORT_MAX}",
        "--log-stderr",
    ]
