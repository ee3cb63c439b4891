"""What a profile's trunk is doing now, read from every enabled node over JSON-RPC: its PBX's
registrations (usrloc `location`, one AOR looked up, never a dump of every contact) and its
calls in progress (the size of its value in the "chan" dialog profile, which counts the same
channels the edge enforces).

The nodes are asked in parallel, each call bounded by EDGE_STATUS_TIMEOUT_MS, and the answers
are waited for no longer than that: a node that is down, refuses, or accepts the connection
and never answers is shown as not answering, and costs the page at most that bound. Nothing
here writes; it is a read of the nodes, so it lives next to the client, not in services.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.edge import clients
from apps.edge.models import EdgeNode
from apps.edge.selectors import edge_nodes
from apps.sip_profiles.models import SipProfile

logger = logging.getLogger(__name__)

# What usrloc answers for a field it has no value for.
_UNSET = {"", "[not set]", "n/a"}
# The pool's wait gives a call that answered at the deadline this long to hand its result back.
_HANDOVER_SECONDS = 0.05


@dataclass(frozen=True)
class Registration:
    """One contact the PBX registered on a node."""

    contact: str  # the Contact URI the PBX registered
    received: str  # where its REGISTER really came from, when behind NAT ("" otherwise)
    user_agent: str
    expires_in: int | None  # seconds left; None for a permanent contact
    expires_at: datetime | None
    socket: str  # the node's socket it came in on, e.g. udp:198.51.100.7:5060


@dataclass(frozen=True)
class NodeLiveState:
    node: str
    role: str
    reachable: bool
    error: str  # why the node is not answering ("" when it answered)
    # None when registration does not apply (an IP profile) or the node did not answer.
    registrations: list[Registration] | None
    active_calls: int | None  # None when the node did not answer

    @property
    def registered(self) -> bool | None:
        return None if self.registrations is None else bool(self.registrations)


@dataclass(frozen=True)
class ProfileLiveState:
    registration_applies: bool  # False for an IP profile: it is authenticated by its address
    channels: int
    nodes: list[NodeLiveState]
    checked_at: datetime

    @property
    def nodes_answering(self) -> int:
        return sum(1 for n in self.nodes if n.reachable)

    @property
    def complete(self) -> bool:
        """Every node answered (the totals then count every node's calls)."""
        return self.nodes_answering == len(self.nodes)

    @property
    def active_calls(self) -> int:
        """Calls in progress on the nodes that answered."""
        return sum(n.active_calls or 0 for n in self.nodes)

    @property
    def registered(self) -> bool | None:
        """Registered on at least one node that answered; None when it does not apply."""
        if not self.registration_applies:
            return None
        return any(n.registered for n in self.nodes)


def profile_live_state(*, profile: SipProfile, timeout: float | None = None) -> ProfileLiveState:
    """Ask every enabled node, in parallel, what the profile's trunk is doing now; the answer
    comes within `timeout` seconds (EDGE_STATUS_TIMEOUT_MS unless given) whatever the nodes do.
    Queries: the enabled nodes (1)."""
    budget = settings.EDGE_STATUS_TIMEOUT_MS / 1000 if timeout is None else timeout
    nodes = edge_nodes()
    aor = profile.sip_username if profile.auth_method == SipProfile.AuthMethod.REGISTRATION else None
    checked_at = timezone.now()
    calls: dict[int, Future[int]] = {}
    lookups: dict[int, Future[list[Registration]]] = {}
    if nodes:
        pool = ThreadPoolExecutor(max_workers=len(nodes) * (2 if aor else 1), thread_name_prefix="edge-live")
        try:
            for node in nodes:
                calls[node.pk] = pool.submit(_calls_in_progress, node.rpc_url, profile.pk, budget)
                if aor:
                    lookups[node.pk] = pool.submit(_registrations, node.rpc_url, aor, budget, checked_at)
            pending: list[Future[Any]] = [*calls.values(), *lookups.values()]
            wait(pending, timeout=budget + _HANDOVER_SECONDS)
        finally:
            # Never wait for a call still running: each ends by itself at its own deadline.
            pool.shutdown(wait=False, cancel_futures=True)
    return ProfileLiveState(
        registration_applies=profile.auth_method == SipProfile.AuthMethod.REGISTRATION,
        channels=profile.channels,
        nodes=[_node_state(node, calls[node.pk], lookups.get(node.pk), budget) for node in nodes],
        checked_at=checked_at,
    )


def _node_state(
    node: EdgeNode, calls: Future[int], lookup: Future[list[Registration]] | None, budget: float
) -> NodeLiveState:
    error = ""
    for future in (calls, lookup):
        if future is None or error:
            continue
        # A call's own timeout and the pool's wait end at the same moment: one message for both.
        # A call a busy machine had not started by then was cancelled by the shutdown.
        if not future.done() or future.cancelled() or isinstance(future.exception(), clients.RpcTimeout):
            error = f"no answer within {budget * 1000:.0f} ms"
        elif future.exception() is not None:
            error = str(future.exception())
    if error:
        # The technical reason is for the logs (and staff): customers read a plain sentence.
        logger.info("edge node %s not answering the live status: %s", node.name, error)
        return NodeLiveState(
            node=node.name, role=node.role, reachable=False, error=error, registrations=None, active_calls=None
        )
    return NodeLiveState(
        node=node.name,
        role=node.role,
        reachable=True,
        error="",
        registrations=lookup.result() if lookup is not None else None,
        active_calls=calls.result(),
    )


def _calls_in_progress(rpc_url: str, profile_id: int, timeout: float) -> int:
    result = clients.rpc(rpc_url, "dlg.profile_get_size", "chan", str(profile_id), timeout=timeout)
    # 5.6 answers the count; older versions an object with it.
    return int(result.get("count", 0)) if isinstance(result, dict) else int(result or 0)


def _registrations(rpc_url: str, aor: str, timeout: float, now: datetime) -> list[Registration]:
    try:
        result = clients.rpc(rpc_url, "ul.lookup", "location", aor, timeout=timeout)
    except clients.EdgeNodeError as exc:
        # usrloc answers an AOR with no contact as an error of its own: not registered.
        if "aor not found" in str(exc).lower():
            return []
        raise
    contacts = result.get("Contacts") if isinstance(result, dict) else None
    found = [_registration(item.get("Contact", item), now) for item in contacts or [] if isinstance(item, dict)]
    return [r for r in found if r is not None]


def _registration(contact: dict[str, Any], now: datetime) -> Registration | None:
    def text(key: str) -> str:
        value = str(contact.get(key) or "")
        return "" if value in _UNSET else value

    # Seconds left, or "permanent". ul.lookup lists valid contacts only; "expired" and
    # "deleted" (how usrloc writes a contact waiting for its timer) never count as registered.
    expires = contact.get("Expires")
    if expires in ("expired", "deleted"):
        return None
    expires_in = int(expires) if isinstance(expires, int) else None
    return Registration(
        contact=text("Address"),
        received=text("Received"),
        user_agent=text("User-Agent"),
        expires_in=expires_in,
        expires_at=now + timedelta(seconds=expires_in) if expires_in is not None else None,
        socket=text("Socket"),
    )


# --- Many trunks at once (the dashboard) -------------------------------------------------

# The most node calls in flight at once for one page: a company with many profiles waits for
# the slowest batch, never more than the time bound; calls not started by then are unknown.
MAX_PARALLEL_CALLS = 16


@dataclass(frozen=True)
class TrunkNow:
    """A profile's calls in progress and registration, summed over the nodes that answered."""

    active_calls: int | None  # None: no node answered for this profile
    complete: bool  # every node answered (else active_calls counts only those that did)
    registered: bool | None  # None: an IP profile, or no node answered the lookup

    @property
    def known(self) -> bool:
        return self.active_calls is not None


UNKNOWN = TrunkNow(active_calls=None, complete=False, registered=None)


def trunks_now(*, profiles: list[SipProfile], timeout: float | None = None) -> dict[int, TrunkNow]:
    """Every given profile's calls in progress and registration, asked of every enabled node in
    parallel (at most MAX_PARALLEL_CALLS at once), answered within `timeout` seconds
    (EDGE_STATUS_TIMEOUT_MS unless given) whatever the nodes do: what no node answered in time
    is unknown. With no node configured, every profile is unknown. Queries: the enabled nodes (1)."""
    budget = settings.EDGE_STATUS_TIMEOUT_MS / 1000 if timeout is None else timeout
    nodes = edge_nodes() if profiles else []
    if not nodes:
        return {profile.pk: UNKNOWN for profile in profiles}
    checked_at = timezone.now()
    calls: dict[tuple[int, int], Future[int]] = {}
    lookups: dict[tuple[int, int], Future[list[Registration]]] = {}
    jobs = len(nodes) * sum(2 if p.auth_method == SipProfile.AuthMethod.REGISTRATION else 1 for p in profiles)
    pool = ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_CALLS, jobs), thread_name_prefix="edge-live")
    try:
        for profile in profiles:
            for node in nodes:
                key = (profile.pk, node.pk)
                calls[key] = pool.submit(_calls_in_progress, node.rpc_url, profile.pk, budget)
                if profile.auth_method == SipProfile.AuthMethod.REGISTRATION and profile.sip_username:
                    lookups[key] = pool.submit(_registrations, node.rpc_url, profile.sip_username, budget, checked_at)
        pending: list[Future[Any]] = [*calls.values(), *lookups.values()]
        wait(pending, timeout=budget + _HANDOVER_SECONDS)
    finally:
        # Never wait for a call still running: each ends by itself at its own deadline.
        pool.shutdown(wait=False, cancel_futures=True)
    return {profile.pk: _trunk_now(profile, nodes, calls, lookups) for profile in profiles}


def _answer(future: Future[Any] | None) -> Any:
    """The call's result, or None when it had not answered (or failed) by the deadline."""
    if future is None or not future.done() or future.cancelled() or future.exception() is not None:
        return None
    return future.result()


def _trunk_now(
    profile: SipProfile,
    nodes: list[EdgeNode],
    calls: dict[tuple[int, int], Future[int]],
    lookups: dict[tuple[int, int], Future[list[Registration]]],
) -> TrunkNow:
    counts = [_answer(calls[(profile.pk, node.pk)]) for node in nodes]
    answered = [count for count in counts if count is not None]
    registered: bool | None = None
    if profile.auth_method == SipProfile.AuthMethod.REGISTRATION:
        found = [_answer(lookups.get((profile.pk, node.pk))) for node in nodes]
        if any(found):
            registered = True
        elif all(contacts is not None for contacts in found):
            registered = False  # every node answered: none holds a contact
    return TrunkNow(
        active_calls=sum(answered) if answered else None,
        complete=len(answered) == len(nodes),
        registered=registered,
    )


# --- Each node up or down (the status page and /health/) ----------------------------------


@dataclass(frozen=True)
class NodeNow:
    node: str
    role: str
    up: bool
    error: str  # why it is down ("" when up)
    version: str  # what Kamailio says it is ("" when down)
    ms: float | None  # how long it took to answer (None when down)


def nodes_now(*, nodes: list[EdgeNode] | None = None, timeout: float | None = None) -> list[NodeNow]:
    """Ask every enabled node (or the given ones) over JSON-RPC for its version, in parallel;
    a node that has not answered within `timeout` seconds (EDGE_STATUS_TIMEOUT_MS unless
    given) is down. Queries: the enabled nodes (1), none when `nodes` is given."""
    budget = settings.EDGE_STATUS_TIMEOUT_MS / 1000 if timeout is None else timeout
    nodes = edge_nodes() if nodes is None else nodes
    if not nodes:
        return []
    pool = ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_CALLS, len(nodes)), thread_name_prefix="edge-ping")
    try:
        futures = [pool.submit(_version, node.rpc_url, budget) for node in nodes]
        wait(futures, timeout=budget + _HANDOVER_SECONDS)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    found = []
    for node, future in zip(nodes, futures, strict=True):
        answer = _answer(future)
        if answer is None:
            failure = future.exception() if future.done() and not future.cancelled() else None
            timed_out = failure is None or isinstance(failure, clients.RpcTimeout)
            error = f"no answer within {budget * 1000:.0f} ms" if timed_out else str(failure)
            found.append(NodeNow(node=node.name, role=node.role, up=False, error=error, version="", ms=None))
        else:
            version, ms = answer
            found.append(NodeNow(node=node.name, role=node.role, up=True, error="", version=version, ms=ms))
    return found


def _version(rpc_url: str, timeout: float) -> tuple[str, float]:
    started = time.perf_counter()
    result = clients.rpc(rpc_url, "core.version", timeout=timeout)
    return str(result or ""), round((time.perf_counter() - started) * 1000, 1)


# /health/ gives each node this long (its other checks answer within about two seconds).
HEALTH_TIMEOUT_SECONDS = 1.0


def edge_health_check() -> dict[str, Any] | None:
    """The "edge" entry of /health/: every enabled node answers JSON-RPC within a second, or
    the entry fails naming the nodes that did not. None (no entry) with no node configured."""
    found = nodes_now(timeout=HEALTH_TIMEOUT_SECONDS)
    if not found:
        return None
    down = [n for n in found if not n.up]
    result: dict[str, Any] = {
        "ok": not down,
        "nodes": {
            n.node: {"ok": n.up, "role": n.role, **({"ms": n.ms} if n.up else {"error": n.error})} for n in found
        },
    }
    if down:
        result["error"] = "; ".join(f"{n.node}: {n.error}" for n in down)
    return result
