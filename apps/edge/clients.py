"""The only module that talks to edge nodes: their PostgreSQL database and their JSON-RPC.

Each write is one transaction on the node's database, holding a transaction-level advisory
lock on the profile id, so two syncs of one profile (two workers, a retry and a fresh
change) cannot interleave; each returns what it changed, so the caller tells Kamailio only
about that.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings

from apps.cdrs.imports import EdgeRecord
from apps.edge.selectors import CARRIER_GROUP, INT, Address, EdgeState

# Advisory lock namespaces (pg_advisory_xact_lock(ns, key)).
LOCK_PROFILE = 7301
LOCK_GLOBAL = 7302
# One inbound route key (hashtext(key)): a number moving from profile A to B is written by
# A's sync and B's sync, which hold different profile locks.
LOCK_ROUTE = 7303


class EdgeNodeError(Exception):
    """A node's database or JSON-RPC failed or refused: the sync is retried later."""


class RpcReloadBusy(EdgeNodeError):
    """permissions.addressReload within its reload interval ("ongoing reload")."""


class RpcTimeout(EdgeNodeError):
    """The node did not answer (connect, a read, or the whole answer) within the call's timeout."""


@dataclass
class ProfileChanges:
    subscriber: str = ""  # "", "added", "updated", "deleted"
    addresses: bool = False
    set_attrs: dict[str, tuple[int, str]] = field(default_factory=dict)
    deleted_attrs: list[str] = field(default_factory=list)
    # Inbound route keys this write took (set_routes) or gave up (deleted_routes).
    set_routes: list[str] = field(default_factory=list)
    deleted_routes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.subscriber
            or self.addresses
            or self.set_attrs
            or self.deleted_attrs
            or self.set_routes
            or self.deleted_routes
        )

    def describe(self) -> list[str]:
        lines = []
        if self.subscriber:
            lines.append(f"subscriber {self.subscriber}")
        if self.addresses:
            lines.append("addresses replaced")
        lines += [f"{key}={value}" for key, (_, value) in sorted(self.set_attrs.items())]
        lines += [f"{key} deleted" for key in sorted(self.deleted_attrs)]
        lines += [f"route {key}" for key in self.set_routes]
        lines += [f"route {key} deleted" for key in self.deleted_routes]
        return lines


def kamailio_db_url(url: str) -> str:
    """Kamailio's db_postgres wants postgres://user[:password]@host[:port]/db."""
    return re.sub(r"^postgresql(\+psycopg)?://", "postgres://", url)


def _connect(database_url: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(kamailio_db_url(database_url), connect_timeout=settings.EDGE_NODE_TIMEOUT)
    except psycopg.Error as exc:
        raise EdgeNodeError(f"node database unreachable: {exc}") from exc


def node_profile_write(
    database_url: str, state: EdgeState, *, before_commit: Callable[[ProfileChanges], None] | None = None
) -> ProfileChanges:
    """Make the node's rows for one profile what `state` says, in one transaction.

    `before_commit` is called with the changes inside that transaction (the caller tells
    Kamailio's memory there): if telling fails, the rows roll back, so the retry finds the
    same difference and tells again, instead of finding the rows in place and telling nothing."""
    changes = ProfileChanges()
    pid = state.profile_id
    try:
        with _connect(database_url) as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_PROFILE, pid))
            _write_subscriber(cur, state, changes)
            _write_addresses(cur, state, changes)
            _write_attrs(cur, state, changes)
            _write_routes(cur, state, changes)
            if before_commit is not None and changes:
                before_commit(changes)
    except psycopg.Error as exc:
        raise EdgeNodeError(f"node database write failed: {exc}") from exc
    return changes


def _write_subscriber(cur: psycopg.Cursor[Any], state: EdgeState, changes: ProfileChanges) -> None:
    cur.execute("SELECT username, domain, ha1, ha1_sha256 FROM subscriber WHERE profile_id = %s", (state.profile_id,))
    rows = cur.fetchall()
    want = state.subscriber
    wanted_row = (want.username, want.domain, want.ha1, want.ha1_sha256) if want else None
    if [tuple(r) for r in rows] == ([wanted_row] if wanted_row else []):
        return
    cur.execute("DELETE FROM subscriber WHERE profile_id = %s", (state.profile_id,))
    if want is None:
        changes.subscriber = "deleted"
        return
    # The username is unique in the portal; a stale row of it (another profile id) is replaced.
    cur.execute("DELETE FROM subscriber WHERE username = %s AND domain = %s", (want.username, want.domain))
    cur.execute(
        "INSERT INTO subscriber (username, domain, ha1, ha1b, ha1_sha256, profile_id) VALUES (%s, %s, %s, '', %s, %s)",
        (want.username, want.domain, want.ha1, want.ha1_sha256, state.profile_id),
    )
    changes.subscriber = "updated" if rows else "added"


def _write_addresses(cur: psycopg.Cursor[Any], state: EdgeState, changes: ProfileChanges) -> None:
    cur.execute("SELECT ip_addr, mask, port, tag FROM address WHERE grp = %s", (state.profile_id,))
    have = {Address(ip=ip, mask=mask, port=port, transport=tag) for ip, mask, port, tag in cur.fetchall()}
    if have == set(state.addresses):
        return
    cur.execute("DELETE FROM address WHERE grp = %s", (state.profile_id,))
    for a in sorted(state.addresses, key=lambda a: (a.ip, a.mask, a.port, a.transport)):
        cur.execute(
            "INSERT INTO address (grp, ip_addr, mask, port, tag) VALUES (%s, %s, %s, %s, %s)",
            (state.profile_id, a.ip, a.mask, a.port, a.transport),
        )
    changes.addresses = True


def _write_attrs(cur: psycopg.Cursor[Any], state: EdgeState, changes: ProfileChanges) -> None:
    cur.execute(
        "SELECT key_name, value_type, key_value FROM sm_profile_attrs WHERE profile_id = %s", (state.profile_id,)
    )
    have = {key: (vtype, value) for key, vtype, value in cur.fetchall()}
    for key, value in state.attrs.items():
        if have.get(key) == value:
            continue
        cur.execute(
            "INSERT INTO sm_profile_attrs (profile_id, key_name, value_type, key_value) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (key_name) DO UPDATE SET value_type = EXCLUDED.value_type, key_value = EXCLUDED.key_value, "
            "profile_id = EXCLUDED.profile_id",
            (state.profile_id, key, value[0], value[1]),
        )
        changes.set_attrs[key] = value
    gone = sorted(set(have) - set(state.attrs))
    if gone:
        cur.execute("DELETE FROM sm_profile_attrs WHERE key_name = ANY(%s)", (gone,))
        changes.deleted_attrs = gone


def _lock_routes(cur: psycopg.Cursor[Any], keys: list[str]) -> None:
    # Sorted, so two writers taking overlapping keys cannot deadlock.
    for key in sorted(keys):
        cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_ROUTE, key))


def _write_routes(cur: psycopg.Cursor[Any], state: EdgeState, changes: ProfileChanges) -> None:
    """A route key has one row, owned by one profile: this profile takes the keys it should
    have (from whichever profile held them) and gives up only keys it still owns, so a number
    that moved to another profile is never routed to two, whichever sync runs first."""
    pid = state.profile_id
    cur.execute(
        "SELECT key_name, profile_id, key_value FROM sm_routes WHERE profile_id = %s OR key_name = ANY(%s)",
        (pid, sorted(state.routes)),
    )
    have = {key: (owner, value) for key, owner, value in cur.fetchall()}
    take = sorted(key for key in state.routes if have.get(key) != (pid, str(pid)))
    give_up = sorted(key for key, (owner, _) in have.items() if owner == pid and key not in state.routes)
    if not take and not give_up:
        return
    _lock_routes(cur, take + give_up)
    for key in take:
        cur.execute(
            "INSERT INTO sm_routes (profile_id, key_name, value_type, key_value) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (key_name) DO UPDATE SET profile_id = EXCLUDED.profile_id, "
            "value_type = EXCLUDED.value_type, key_value = EXCLUDED.key_value",
            (pid, key, INT, str(pid)),
        )
    changes.set_routes = take
    if give_up:
        # "AND profile_id": a key another profile took meanwhile stays that profile's.
        cur.execute(
            "DELETE FROM sm_routes WHERE key_name = ANY(%s) AND profile_id = %s RETURNING key_name", (give_up, pid)
        )
        changes.deleted_routes = sorted(key for (key,) in cur.fetchall())


def node_routes_apply(database_url: str, rpc_url: str, keys: list[str]) -> None:
    """Tell the node's "route" htable what its database now says of these keys, holding the
    keys' locks: of two syncs that changed one key (a number moving from A to B), the one
    that tells last tells what was committed last, so memory never keeps a key the database
    gave to another profile, nor loses one it has."""
    if not keys:
        return
    try:
        with _connect(database_url) as conn, conn.transaction(), conn.cursor() as cur:
            _lock_routes(cur, keys)
            cur.execute("SELECT key_name, key_value FROM sm_routes WHERE key_name = ANY(%s)", (sorted(keys),))
            now = dict(cur.fetchall())
            for key in sorted(keys):
                if key in now:
                    rpc(rpc_url, "htable.seti", "route", key, int(now[key]))
                else:
                    rpc_htable_delete(rpc_url, "route", key)
    except psycopg.Error as exc:
        raise EdgeNodeError(f"node database read failed: {exc}") from exc


def node_carrier_sources_write(database_url: str, sources: frozenset[Address]) -> bool:
    """The carriers' inbound sources := address group CARRIER_GROUP; True when it changed."""
    try:
        with _connect(database_url) as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s, 3)", (LOCK_GLOBAL,))
            cur.execute("SELECT ip_addr, mask, port FROM address WHERE grp = %s", (CARRIER_GROUP,))
            if {Address(ip=ip, mask=mask, port=port) for ip, mask, port in cur.fetchall()} == set(sources):
                return False
            cur.execute("DELETE FROM address WHERE grp = %s", (CARRIER_GROUP,))
            cur.executemany(
                "INSERT INTO address (grp, ip_addr, mask, port, tag) VALUES (%s, %s, %s, %s, 'carrier')",
                [(CARRIER_GROUP, a.ip, a.mask, a.port) for a in sorted(sources, key=lambda a: (a.ip, a.mask))],
            )
    except psycopg.Error as exc:
        raise EdgeNodeError(f"node database write failed: {exc}") from exc
    return True


@dataclass
class BlockedChanges:
    """What a write changed in the node's blocked list: keys set (to their reason) and deleted."""

    set_keys: dict[str, str] = field(default_factory=dict)
    deleted_keys: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.set_keys or self.deleted_keys)


def node_blocked_write(
    database_url: str, entries: dict[str, str], *, before_commit: Callable[[BlockedChanges], None] | None = None
) -> BlockedChanges:
    """Make the node's blocked list `entries`, per key (only the keys that differ are written),
    in one transaction; `before_commit` is called with the changes inside it, as for a
    profile (node_profile_write), so a node that could not be told keeps the old rows and the
    retry finds the same difference."""
    changes = BlockedChanges()
    try:
        with _connect(database_url) as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s, 1)", (LOCK_GLOBAL,))
            cur.execute("SELECT key_name, key_value FROM sm_blocked")
            have = dict(cur.fetchall())
            changes.set_keys = {key: reason for key, reason in sorted(entries.items()) if have.get(key) != reason}
            changes.deleted_keys = sorted(set(have) - set(entries))
            if changes.deleted_keys:
                cur.execute("DELETE FROM sm_blocked WHERE key_name = ANY(%s)", (changes.deleted_keys,))
            cur.executemany(
                "INSERT INTO sm_blocked (key_name, key_value) VALUES (%s, %s) "
                "ON CONFLICT (key_name) DO UPDATE SET key_value = EXCLUDED.key_value",
                list(changes.set_keys.items()),
            )
            if before_commit is not None and changes:
                before_commit(changes)
    except psycopg.Error as exc:
        raise EdgeNodeError(f"node database write failed: {exc}") from exc
    return changes


def node_carriers_write(database_url: str, destinations: list[tuple[str, int]]) -> bool:
    """Dispatcher set 1 := the carriers; True when it changed."""
    try:
        with _connect(database_url) as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s, 2)", (LOCK_GLOBAL,))
            cur.execute("SELECT destination, priority FROM dispatcher WHERE setid = 1 ORDER BY destination")
            if sorted(tuple(r) for r in cur.fetchall()) == sorted(destinations):
                return False
            cur.execute("DELETE FROM dispatcher WHERE setid = 1")
            cur.executemany(
                "INSERT INTO dispatcher (setid, destination, flags, priority) VALUES (1, %s, 0, %s)", destinations
            )
    except psycopg.Error as exc:
        raise EdgeNodeError(f"node database write failed: {exc}") from exc
    return True


@dataclass(frozen=True)
class NodeCdr:
    record: EdgeRecord
    # Written more than the settle interval ago (by the node database's clock): an id
    # missing before it belongs to an insert that rolled back, not one yet to commit.
    settled: bool


def node_cdrs_read(database_url: str, *, after: int, limit: int, settle_seconds: float) -> list[NodeCdr]:
    """The node's call records with an id above `after`, in id order, at most `limit`."""
    try:
        with _connect(database_url) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT id, call_id, profile_id, dest_profile_id, direction, auth_method, source_ip, caller, callee,"
                " started_at, answered_at, ended_at, sip_code, refusal,"
                " created_at < clock_timestamp() - make_interval(secs => %s)"
                " FROM sm_cdrs WHERE id > %s ORDER BY id LIMIT %s",
                (settle_seconds, after, limit),
            )
            rows = cur.fetchall()
    except psycopg.Error as exc:
        raise EdgeNodeError(f"node CDRs not read: {exc}") from exc
    return [NodeCdr(record=EdgeRecord(*row[:14]), settled=bool(row[14])) for row in rows]


def _applied_tables(cur: psycopg.Cursor[Any]) -> set[str]:
    cur.execute("SELECT to_regclass('version') IS NOT NULL")
    row = cur.fetchone()
    if not row or not row[0]:
        return set()
    cur.execute("SELECT table_name FROM version")
    return {name for (name,) in cur.fetchall()}


def node_schema_apply(database_url: str, files: list[Path], ours: Path) -> list[str]:
    """Apply each Kamailio module file whose tables are not there yet (by the `version`
    rows it inserts), then our own idempotent file; returns the names of the files applied."""
    applied: list[str] = []
    try:
        with _connect(database_url) as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCK_GLOBAL,))
            for path in files:
                sql = path.read_text()
                tables = set(re.findall(r"INSERT INTO version \(table_name, table_version\) values \('(\w+)'", sql))
                if tables and tables <= _applied_tables(cur):
                    continue
                cur.execute(sql.encode())
                applied.append(path.name)
            cur.execute(ours.read_text().encode())
            applied.append(ours.name)
    except psycopg.Error as exc:
        raise EdgeNodeError(f"schema not applied: {exc}") from exc
    return applied


def rpc(rpc_url: str, method: str, *params: Any, timeout: float | None = None) -> Any:
    """One JSON-RPC 2.0 call; the result, or EdgeNodeError.

    `timeout` (seconds; EDGE_NODE_TIMEOUT unless given) bounds the connection, each read and
    the whole body: a socket timeout alone restarts on every byte, so a node that trickles
    its answer is cut off at the deadline too."""
    if not rpc_url.startswith(("http://", "https://")):
        raise EdgeNodeError(f"JSON-RPC URL must be http(s): {rpc_url!r}")
    limit = settings.EDGE_NODE_TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + limit
    body = json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}).encode()
    request = urllib.request.Request(rpc_url, data=body, headers={"Content-Type": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=limit) as response:  # noqa: S310
            chunks = []
            while chunk := response.read1(65536):
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise RpcTimeout(f"JSON-RPC {method}: no whole answer within {limit * 1000:.0f} ms")
            answer = json.loads(b"".join(chunks) or b"{}")
    except RpcTimeout:
        raise
    except urllib.error.HTTPError as exc:
        # jsonrpcs answers an RPC error with its HTTP status and the message as the reason.
        if "ongoing reload" in str(exc.reason).lower():
            raise RpcReloadBusy(f"JSON-RPC {method}: {exc.code} {exc.reason}") from exc
        raise EdgeNodeError(f"JSON-RPC {method}: {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        if isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError):
            raise RpcTimeout(f"JSON-RPC {method}: no answer within {limit * 1000:.0f} ms") from exc
        raise EdgeNodeError(f"JSON-RPC {method} failed: {exc}") from exc
    error = answer.get("error")
    if error:
        message = str(error.get("message", error))
        if "ongoing reload" in message.lower():
            raise RpcReloadBusy(f"JSON-RPC {method}: {message}")
        raise EdgeNodeError(f"JSON-RPC {method}: {message}")
    return answer.get("result")


def rpc_htable_delete(rpc_url: str, table: str, key: str) -> None:
    """Delete a key; one that is not there (never loaded, deleted by hand) is already gone."""
    try:
        rpc(rpc_url, "htable.delete", table, key)
    except EdgeNodeError as exc:
        if "not found" not in str(exc).lower():
            raise


def rpc_address_reload(rpc_url: str, *, attempts: int = 4, wait: float = 1.1) -> None:
    """permissions.addressReload refuses a reload within reload_delta (1 s in our config) of
    the last one. A refused reload may predate our write, so it is tried again after the
    interval rather than taken as done."""
    rpc_reload(rpc_url, "permissions.addressReload", attempts=attempts, wait=wait)


def rpc_dispatcher_targets(rpc_url: str) -> list[tuple[str, int]]:
    """What the running node holds in dispatcher set 1 (memory, not its database): (URI,
    priority) of each destination; none when it holds no set at all."""
    try:
        listing = rpc(rpc_url, "dispatcher.list")
    except EdgeNodeError as exc:
        if "no destination sets" in str(exc).lower():
            return []
        raise
    targets = []
    for record in (listing or {}).get("RECORDS", []):
        if int(record["SET"]["ID"]) != 1:
            continue
        for target in record["SET"].get("TARGETS", []):
            dest = target["DEST"]
            targets.append((str(dest["URI"]), int(dest["PRIORITY"])))
    return sorted(targets)


def rpc_reload(rpc_url: str, method: str, *, attempts: int = 4, wait: float = 1.1) -> None:
    """A reload RPC that Kamailio refuses within its module's reload_delta (1 s in our config:
    permissions.addressReload, dispatcher.reload), tried again after the interval."""
    for attempt in range(attempts):
        try:
            rpc(rpc_url, method)
            return
        except RpcReloadBusy:
            if attempt == attempts - 1:
                raise
            time.sleep(wait)
