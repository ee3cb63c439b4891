"""Reading and checking a CDR CSV. Pure functions, no writes: `apps.cdrs.services` runs the
load with them."""

from __future__ import annotations

import ipaddress
import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from functools import lru_cache

from apps.cdrs.models import Cdr
from apps.core.csvfiles import Row
from apps.core.exceptions import ApplicationError
from apps.core.phone import e164, parse_number

COLUMNS = (
    "node",
    "edge_id",
    "call_id",
    "profile",
    "direction",
    "caller",
    "callee",
    "start",
    "answer",
    "end",
    "duration",
    "billable",
    "sip_code",
    "disposition",
    "auth_method",
    "source",
)
DIRECTIONS = frozenset(Cdr.Direction.values)
DISPOSITIONS = frozenset(Cdr.Disposition.values)
AUTH_METHODS = frozenset(Cdr.AuthMethod.values)
MAX_NODE = 40
MAX_CALL_ID = 255
MAX_EDGE_ID = 2**63 - 1
MAX_SECONDS = 2**31 - 1
MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_ROWS = 1_000_000
TEMPLATE = (
    ",".join(COLUMNS) + "\nedge-1,1001,a84b4c76e66710@pbx.example,sip_3f9a2c,outbound,+442079460958,+14155550123,"
    "2026-01-05T10:00:00Z,2026-01-05T10:00:07Z,2026-01-05T10:02:07Z,127,120,200,answered,registration,198.51.100.7"
    + "\nedge-1,1002,77f2e1@pbx.example,sip_3f9a2c,outbound,+442079460958,+14155550124,"
    "2026-01-05T10:05:00Z,,2026-01-05T10:05:20Z,20,0,486,busy,registration,198.51.100.7\n"
)


@dataclass(frozen=True, slots=True)
class CdrValues:
    """One CSV row, checked; `profile` is still the text of the file (resolved by the service)."""

    node: str
    edge_id: int
    call_id: str
    profile: str
    direction: str
    caller: str
    callee: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    duration_seconds: int
    billable_seconds: int
    sip_code: int
    disposition: str
    auth_method: str
    source_address: str


@lru_cache(maxsize=200_000)
def _e164(text: str) -> str:
    # Cached: a busy trunk's caller numbers repeat on most rows, and parsing is the slow part.
    if not text.startswith("+"):
        raise ApplicationError(f"“{text}” is not in E.164 (+ and the country code, e.g. +442079460958)")
    try:
        number = e164(parse_number(text, region=None))
    except ApplicationError as error:
        raise ApplicationError(error.message.rstrip(".")) from None
    if number != text:
        raise ApplicationError(f"“{text}” is not in E.164 (write it {number})")
    return number


def _moment(text: str, column: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{column}: “{text}” is not a time (2026-01-05T10:00:00Z)") from None
    if moment.tzinfo is None:
        raise ValueError(f"{column}: “{text}” has no time zone offset (add Z or +00:00)")
    return moment.astimezone(UTC)


def _whole(text: str, column: str, maximum: int) -> int:
    if not (text.isdigit() and text.isascii()) or int(text) > maximum:
        raise ValueError(f"{column}: “{text}” is not a whole number from 0 to {maximum:,}")
    return int(text)


@lru_cache(maxsize=10_000)
def _address(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ApplicationError(f"source: “{text}” is not an IP address") from None


def clean_row(row: Row) -> CdrValues:
    """Check one CSV row. Raises ApplicationError whose message names every problem."""
    if "__width__" in row.values:
        raise ApplicationError(f"The row has {row.values['__width__']} fields; expected {len(COLUMNS)}.")
    values = {key: value.strip() for key, value in row.values.items()}
    problems: list[str] = []

    node = values["node"]
    if not node or len(node) > MAX_NODE or not node.isprintable():
        problems.append(f"node: “{node}” is not a node name of 1 to {MAX_NODE} characters")
    edge_id = 0
    try:
        edge_id = _whole(values["edge_id"], "edge_id", MAX_EDGE_ID)
    except ValueError as error:
        problems.append(str(error))
    call_id = values["call_id"]
    if not call_id or len(call_id) > MAX_CALL_ID or not call_id.isprintable():
        problems.append(f"call_id: is not 1 to {MAX_CALL_ID} printable characters")
    if not values["profile"]:
        problems.append("profile is required (the SIP profile's public id or SIP username)")
    direction = values["direction"].lower()
    if direction not in DIRECTIONS:
        problems.append(f"direction: “{values['direction']}” is not one of {', '.join(Cdr.Direction.values)}")
    numbers: dict[str, str] = {}
    for column in ("caller", "callee"):
        try:
            numbers[column] = _e164(values[column])
        except ApplicationError as error:
            problems.append(f"{column}: {error.message}")

    moments: dict[str, datetime | None] = {}
    for column in ("start", "answer", "end"):
        text = values[column]
        if not text:
            if column != "answer":
                problems.append(f"{column} is required")
            moments[column] = None
            continue
        try:
            moments[column] = _moment(text, column)
        except ValueError as error:
            problems.append(str(error))
    started, answered, ended = moments.get("start"), moments.get("answer"), moments.get("end")
    if started and ended and ended < started:
        problems.append("end is before start")
    if answered and started and ended and not started <= answered <= ended:
        problems.append("answer is not between start and end")

    seconds: dict[str, int] = {}
    for column in ("duration", "billable"):
        try:
            seconds[column] = _whole(values[column], column, MAX_SECONDS)
        except ValueError as error:
            problems.append(str(error))
    duration, billable = seconds.get("duration"), seconds.get("billable")
    if duration is not None and billable is not None and billable > duration:
        problems.append(f"billable ({billable}) is more than duration ({duration})")
    if started and ended and duration is not None and duration > (ended - started).total_seconds() + 1:
        problems.append(f"duration ({duration}) is longer than end − start")

    sip_code = 0
    if values["sip_code"].isdigit() and values["sip_code"].isascii() and 100 <= int(values["sip_code"]) <= 699:
        sip_code = int(values["sip_code"])
    else:
        problems.append(f"sip_code: “{values['sip_code']}” is not a SIP response code (100 to 699)")
    disposition = values["disposition"].lower().replace(" ", "_").replace("-", "_")
    if disposition not in DISPOSITIONS:
        problems.append(f"disposition: “{values['disposition']}” is not one of {', '.join(Cdr.Disposition.values)}")
    elif (disposition == Cdr.Disposition.ANSWERED) != bool(values["answer"]):
        problems.append(
            "answer is required for an answered call"
            if disposition == Cdr.Disposition.ANSWERED
            else f"a {disposition} call has no answer time"
        )
    if disposition in DISPOSITIONS and disposition != Cdr.Disposition.ANSWERED and billable:
        problems.append(f"a {disposition} call has no billable seconds")
    auth_method = values["auth_method"].lower()
    if auth_method not in AUTH_METHODS:
        problems.append(f"auth_method: “{values['auth_method']}” is not one of {', '.join(Cdr.AuthMethod.values)}")
    source = ""
    try:
        source = _address(values["source"])
    except ApplicationError as error:
        problems.append(error.message)

    if problems or started is None or ended is None or duration is None or billable is None:
        raise ApplicationError("; ".join(problems) + ".")
    return CdrValues(
        node=node,
        edge_id=edge_id,
        call_id=call_id,
        profile=values["profile"],
        direction=direction,
        caller=numbers["caller"],
        callee=numbers["callee"],
        started_at=started,
        answered_at=answered,
        ended_at=ended,
        duration_seconds=duration,
        billable_seconds=billable,
        sip_code=sip_code,
        disposition=disposition,
        auth_method=auth_method,
        source_address=source,
    )


def profile_keys(texts: Iterable[str]) -> tuple[set[uuid.UUID], set[str]]:
    """The public ids and the SIP usernames among the file's `profile` values."""
    public_ids: set[uuid.UUID] = set()
    usernames: set[str] = set()
    for text in texts:
        try:
            public_ids.add(uuid.UUID(text))
        except ValueError:
            usernames.add(text)
    return public_ids, usernames


# --- Records of a node's CDR table (sm_cdrs) --------------------------------------------

# What kamailio.cfg writes as the call's authentication, as the CDR's auth method ("carrier":
# an inbound call, whose profile's own method is used).
EDGE_AUTH_METHODS = {"digest": Cdr.AuthMethod.REGISTRATION, "ip": Cdr.AuthMethod.IP}
REFUSAL_REASONS = frozenset(Cdr.RefusalReason.values)
MAX_CALLEE = 40
BUSY_CODES = frozenset({486, 600})
NO_ANSWER_CODES = frozenset({408, 480})
CANCELLED_CODE = 487


@dataclass(frozen=True, slots=True)
class EdgeRecord:
    """One row of a node's sm_cdrs, as read (deploy/kamailio/edge-schema.sql)."""

    edge_id: int
    call_id: str
    profile_id: int | None
    dest_profile_id: int | None
    direction: str
    auth_method: str
    source_ip: str
    caller: str
    callee: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    sip_code: int
    refusal: str

    def as_json(self) -> dict[str, object]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: v.isoformat() if isinstance(v, datetime) else v for name, v in values.items()}


def _whole_seconds(seconds: float) -> int:
    # A started second is billed (0.2 s is 1 s); a few microseconds of float noise are not.
    return max(0, math.ceil(round(seconds, 3)))


def _edge_caller(text: str) -> str:
    """The caller's E.164 number, or "" when the edge had none it could read (anonymous,
    withheld, a name): the call still happened and is kept."""
    text = (text or "").strip()
    if text.isdigit() and 8 <= len(text) <= 15:
        text = "+" + text  # a carrier's bare international digits
    elif text.startswith("00") and text[2:].isdigit():
        text = "+" + text[2:]
    try:
        return _e164(text)
    except ApplicationError:
        return ""


def disposition_of(record: EdgeRecord) -> str:
    if record.refusal:
        return Cdr.Disposition.REFUSED
    if record.answered_at is not None:
        return Cdr.Disposition.ANSWERED
    if record.sip_code in BUSY_CODES:
        return Cdr.Disposition.BUSY
    if record.sip_code == CANCELLED_CODE:
        return Cdr.Disposition.CANCELLED
    if record.sip_code in NO_ANSWER_CODES:
        return Cdr.Disposition.NO_ANSWER
    return Cdr.Disposition.FAILED


def clean_edge_record(record: EdgeRecord, *, profile_auth_method: str) -> dict[str, object]:
    """A node's record as the columns of a Cdr (less node, profile and company). Raises
    ApplicationError naming every problem: the record is then kept as a RejectedCdr."""
    problems: list[str] = []
    if record.direction not in DIRECTIONS:
        problems.append(f"direction: “{record.direction}” is not one of {', '.join(Cdr.Direction.values)}")
    if record.auth_method == "carrier":
        auth_method = profile_auth_method
    else:
        auth_method = EDGE_AUTH_METHODS.get(record.auth_method, "")
        if not auth_method:
            problems.append(f"auth_method: “{record.auth_method}” is not digest, ip or carrier")
    if record.refusal and record.refusal not in REFUSAL_REASONS:
        problems.append(f"refusal: “{record.refusal}” is not one of {', '.join(sorted(REFUSAL_REASONS))}")
    callee = (record.callee or "").strip()
    if record.refusal or record.direction == Cdr.Direction.ON_NET:
        # What was dialled (a refused call), a business account's name (on-net).
        if len(callee) > MAX_CALLEE or not callee.isprintable():
            problems.append(f"callee: “{callee[:60]}” is not 0 to {MAX_CALLEE} printable characters")
    else:
        try:
            callee = _e164(callee)
        except ApplicationError as error:
            problems.append(f"callee: {error.message}")
    call_id = record.call_id
    if not call_id or len(call_id) > MAX_CALL_ID or not call_id.isprintable():
        problems.append(f"call_id: is not 1 to {MAX_CALL_ID} printable characters")
    source = ""
    try:
        source = _address(record.source_ip)
    except ApplicationError as error:
        problems.append(error.message)
    if not 100 <= record.sip_code <= 699:
        problems.append(f"sip_code: {record.sip_code} is not a SIP response code (100 to 699)")
    started, answered, ended = record.started_at, record.answered_at, record.ended_at
    if ended < started:
        problems.append("ended_at is before started_at")
    if answered is not None and not started <= answered <= ended:
        problems.append("answered_at is not between started_at and ended_at")
    if problems:
        raise ApplicationError("; ".join(problems) + ".")
    duration = _whole_seconds((ended - started).total_seconds())
    billable = min(duration, _whole_seconds((ended - answered).total_seconds())) if answered else 0
    return {
        "edge_id": record.edge_id,
        "call_id": call_id,
        "direction": record.direction,
        "caller": _edge_caller(record.caller),
        "callee": callee,
        "started_at": started,
        "answered_at": answered,
        "ended_at": ended,
        "duration_seconds": duration,
        "billable_seconds": billable,
        "sip_code": record.sip_code,
        "disposition": disposition_of(record),
        "refusal_reason": record.refusal,
        "auth_method": auth_method,
        "source_address": source,
    }
