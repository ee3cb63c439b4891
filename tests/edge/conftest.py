"""A real edge for the tests: a throwaway node database on the suite's PostgreSQL, the
schema applied as `edge_db init` applies it, and Kamailio on free loopback ports, started
once per test process and stopped by pid at the end (also when tests fail)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings
from psycopg.conninfo import conninfo_to_dict

from apps.edge import clients, services
from apps.edge.models import Carrier, EdgeNode
from apps.edge.selectors import CARRIER_GROUP
from tests.edge.sip import Peer
from tests.helpers.workers import Worker, celery_worker

SCENARIOS = Path(__file__).parent / "scenarios"
CARRIER_SOURCE = "127.0.0.9"
HAVE_EDGE = all(shutil.which(p) for p in ("kamailio", "sipp", "rtpengine", "openssl"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "edge: runs against a real Kamailio started by tests/edge/conftest.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="kamailio, sipp and rtpengine are not installed (make test installs them)")
    for item in items:
        if "tests/edge/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.edge)
            if not HAVE_EDGE:
                item.add_marker(skip)


def free_port() -> int:
    """A port free on loopback for both UDP and TCP (SIP listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return int(port)
    raise RuntimeError("no free port")


@dataclass
class TlsFiles:
    ca: Path  # what a PBX trusts
    certificate: Path
    private_key: Path


@dataclass
class MediaRelay:
    ng: str  # rtpengine's control socket, host:port
    port_min: int
    port_max: int


class Kamailio:
    """One node's Kamailio process, started and stopped by its pid; started again on the same
    ports and database, it is the node coming back after a failure."""

    def __init__(self, command: list[str], *, rpc_url: str, workdir: Path, log: Path) -> None:
        self.command, self.rpc_url, self.workdir, self.log = command, rpc_url, workdir, log
        self.proc: subprocess.Popen[Any] | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start it and wait until it answers JSON-RPC (it has loaded its tables by then)."""
        with self.log.open("ab") as out:
            proc = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir)  # noqa: S603
        self.proc = proc
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"kamailio exited ({proc.returncode}):\n{self.log.read_text()[-4000:]}")
            try:
                clients.rpc(self.rpc_url, "core.uptime")
                return
            except clients.EdgeNodeError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)


@dataclass
class Edge:
    node: EdgeNode  # unsaved: each test saves its own copy (test transactions roll back)
    carrier_port: int
    log: Path
    tls: TlsFiles | None = None
    media: MediaRelay | None = None
    kamailio: Kamailio | None = None
    database_down: bool = False

    @property
    def sip(self) -> str:
        return f"127.0.0.1:{self.node.sip_port}"

    def stop(self, *, database: bool = False) -> None:
        """The node fails: its Kamailio is stopped by pid. With `database`, its database
        refuses connections too (the whole host is down; its disk keeps the data)."""
        assert self.kamailio is not None
        self.kamailio.stop()
        if database:
            node_database_reachable(self.node.database_url, False)
            self.database_down = True

    def start(self) -> None:
        """The node returns, on the same ports, reading the same database."""
        assert self.kamailio is not None
        if self.database_down:
            node_database_reachable(self.node.database_url, True)
            self.database_down = False
        if not self.kamailio.running:
            self.kamailio.start()

    def rpc(self, method: str, *params: Any) -> Any:
        return clients.rpc(self.node.rpc_url, method, *params)

    def channels_in_use(self, profile_id: int) -> int:
        result = self.rpc("dlg.profile_get_size", "chan", str(profile_id))
        return int(result.get("count", 0)) if isinstance(result, dict) else int(result or 0)


# Defines every test node starts with on top of its node's own (a rule's test that needs a
# shorter timer on the shared node adds its define here; one that needs it on its own node
# passes extra_defines to running_edge()).
TEST_DEFINES: list[str] = []


def node_database_reachable(database_url: str, reachable: bool) -> None:
    """Let a node database take connections again, or refuse them all (those open are ended),
    as when its host is down: portal writes and CDR reads then fail to connect."""
    info = conninfo_to_dict(clients.kamailio_db_url(database_url))
    name = info.pop("dbname")
    with psycopg.connect(**{**info, "dbname": "postgres"}, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {"true" if reachable else "false"}')
        if not reachable:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )


@contextmanager
def node_database(label: str = "edge") -> Iterator[str]:
    """A throwaway node database on the suite's PostgreSQL, dropped at the end."""
    base = settings.DATABASES["default"]
    name = f"{label}_{os.environ.get('PYTEST_XDIST_WORKER', 'gw0')}_{uuid.uuid4().hex[:8]}"
    server = {
        "host": base.get("HOST") or "127.0.0.1",
        "port": base.get("PORT") or 5432,
        "user": base.get("USER") or "postgres",
        "password": base.get("PASSWORD") or None,
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    password = f":{server['password']}" if server["password"] else ""
    try:
        yield f"postgres://{server['user']}{password}@{server['host']}:{server['port']}/{name}"
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **server) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def running_edge(
    database_url: str,
    *,
    name: str = "test-edge",
    role: str = EdgeNode.Role.PRIMARY,
    public_host: str = "sip1.test.invalid",
    carrier_port: int | None = None,
    extra_defines: Sequence[str] = (),
    tls: TlsFiles | None = None,
    media: MediaRelay | None = None,
) -> Iterator[Edge]:
    """Kamailio for a node on free loopback ports, its schema applied as `edge_db init --node`
    applies it; stopped by pid at the end, also when tests fail. With `tls` it also listens
    on TLS with that certificate; with `media` it anchors media in that rtpengine."""
    sip_port, rpc_port = free_port(), free_port()
    node = EdgeNode(
        name=name,
        role=role,
        sip_host="127.0.0.1",
        sip_port=sip_port,
        rpc_url=f"http://127.0.0.1:{rpc_port}/RPC",
        database_url=database_url,
        public_host=public_host,
        tls_port=free_port() if tls else None,
        tls_certificate=str(tls.certificate) if tls else "",
        tls_private_key=str(tls.private_key) if tls else "",
        rtpengine=media.ng if media else "",
    )
    services.edge_db_init(node=node)  # what `edge_db init --node` runs
    workdir = Path(tempfile.mkdtemp(prefix="edge-test-"))
    log = workdir / "kamailio.log"
    command = services.kamailio_command(node, runtime_dir=str(workdir), extra_defines=[*TEST_DEFINES, *extra_defines])
    command[command.index("-m") + 1] = "128"  # tests need far less shared memory
    kamailio = Kamailio(command, rpc_url=node.rpc_url, workdir=workdir, log=log)
    try:
        kamailio.start()
        yield Edge(
            node=node, carrier_port=carrier_port or free_port(), log=log, tls=tls, media=media, kamailio=kamailio
        )
    finally:
        kamailio.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def stop(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def edge_tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A CA of the tests' own and the node's certificate for 127.0.0.1, signed by it (openssl)."""
    d = tmp_path_factory.mktemp("edge-tls")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=30)  # noqa: S603, S607

    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Test CA")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:sip1.test.invalid\n")
    openssl("req", *key, "-keyout", "edge.key", "-out", "edge.csr", "-subj", "/CN=sip1.test.invalid")
    openssl(
        "x509", "-req", "-in", "edge.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "edge.pem", "-days", "2", "-extfile", "ext.cnf",
    )  # fmt: skip
    return TlsFiles(ca=d / "ca.pem", certificate=d / "edge.pem", private_key=d / "edge.key")


@pytest.fixture(scope="session")
def edge_media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaRelay]:
    """The node's rtpengine, as edge_run starts it (userspace), on a port range of this test
    process; stopped by pid at the end."""
    port_min = 20000 + (os.getpid() % 400) * 100
    media = MediaRelay(ng=f"127.0.0.1:{free_port()}", port_min=port_min, port_max=port_min + 99)
    command = services.rtpengine_command(EdgeNode(name="media", sip_host="127.0.0.1", rtpengine=media.ng))
    assert command is not None
    command = [a for a in command if not a.startswith(("--port-min", "--port-max"))]
    # No delete delay (30 s by default): a test sees at once that a BYE ended the session.
    command += [f"--port-min={media.port_min}", f"--port-max={media.port_max}", "--delete-delay=0"]
    log = tmp_path_factory.mktemp("rtpengine") / "rtpengine.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        time.sleep(0.3)
        if proc.poll() is not None:
            raise RuntimeError(f"rtpengine exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        yield media
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def edge_database_url() -> Iterator[str]:
    with node_database() as url:
        yield url


@pytest.fixture(scope="session")
def edge(edge_database_url: str, edge_tls: TlsFiles, edge_media: MediaRelay) -> Iterator[Edge]:
    with running_edge(edge_database_url, tls=edge_tls, media=edge_media) as running:
        yield running


# A second node whose timers are seconds, not minutes, for the tests of what happens when
# they run out (ban, longest call, NAT keep-alives). It shares the first node's carrier.
QUICK_DEFINES = [
    "EDGE_BAN_SECONDS=3",
    "EDGE_MAX_CALL_SECONDS=3",
    "EDGE_NATPING_INTERVAL=1",
    "EDGE_NAT_KEEPALIVE_TIMEOUT=3",
    "EDGE_UL_TIMER_INTERVAL=1",
    # A BYE nobody answers is given up after 4 s, not tm's 30 s: the longest-call tests end
    # calls whose far ends are gone, and their dialogs end only when those BYEs do.
    "EDGE_TM_FR_TIMER=4000",
]


@pytest.fixture(scope="session")
def quick_edge(edge: Edge) -> Iterator[Edge]:
    with (
        node_database("quick") as url,
        running_edge(url, name="quick-edge", carrier_port=edge.carrier_port, extra_defines=QUICK_DEFINES) as running,
    ):
        yield running


@pytest.fixture
def edge_node(edge: Edge, db: Any, settings: Any) -> Iterator[EdgeNode]:
    """The edge as a row of this test, with its carrier (a SIPp UAS on carrier_port), the
    shared lists pushed, and sync on."""
    settings.EDGE_SYNC_ENABLED = True
    node = node_row(edge)
    # Its inbound calls come from 127.0.0.9 (tests/edge/test_inbound.py plays it with SIPp).
    Carrier.objects.create(
        name="test carrier", address="127.0.0.1", port=edge.carrier_port, inbound_from=[CARRIER_SOURCE]
    )
    results = services.edge_sync_global()
    assert [r.error for r in results] == [""]
    yield node
    forget_profiles(edge)


@pytest.fixture
def quick_edge_node(quick_edge: Edge, edge_node: EdgeNode) -> Iterator[EdgeNode]:
    """The quick node as a second row of this test (profiles sync to both), lists pushed."""
    node = node_row(quick_edge, role=EdgeNode.Role.SECONDARY, public_host="sip2.test.invalid")
    results = services.edge_sync_global(node_names=[node.name])
    assert [r.error for r in results] == [""]
    yield node
    forget_profiles(quick_edge)


def node_row(edge: Edge, **overrides: Any) -> EdgeNode:
    """The running node as a row of this test (its copy rolls back with the test)."""
    fields = {
        "name": edge.node.name,
        "role": edge.node.role,
        "sip_host": edge.node.sip_host,
        "sip_port": edge.node.sip_port,
        "rpc_url": edge.node.rpc_url,
        "database_url": edge.node.database_url,
        "public_host": edge.node.public_host,
        "tls_port": edge.node.tls_port,
        "tls_certificate": edge.node.tls_certificate,
        "tls_private_key": edge.node.tls_private_key,
        "rtpengine": edge.node.rtpengine,
    }
    return EdgeNode.objects.create(**{**fields, **overrides})


# --- Two nodes: primary and secondary ---------------------------------------------------


@dataclass
class EdgePair:
    """Two nodes that share nothing but the portal (and the carrier): each its own Kamailio,
    its own node database, its own ports."""

    primary: Edge
    secondary: Edge

    @property
    def both(self) -> tuple[Edge, Edge]:
        return self.primary, self.secondary


@contextmanager
def running_edge_pair(
    *,
    carrier_port: int | None = None,
    extra_defines: Sequence[str] = (),
    tls: TlsFiles | None = None,
    media: MediaRelay | None = None,
) -> Iterator[EdgePair]:
    """A primary and a secondary node (public hosts sip1/sip2.test.invalid), both calling
    out to one carrier port; each stopped by pid at the end, also when tests fail."""
    carrier_port = carrier_port or free_port()
    common: dict[str, Any] = {"carrier_port": carrier_port, "extra_defines": extra_defines, "tls": tls, "media": media}
    with (
        node_database("primary") as primary_url,
        node_database("secondary") as secondary_url,
        running_edge(primary_url, name="edge-primary", **common) as primary,
        running_edge(
            secondary_url,
            name="edge-secondary",
            role=EdgeNode.Role.SECONDARY,
            public_host="sip2.test.invalid",
            **common,
        ) as secondary,
    ):
        yield EdgePair(primary=primary, secondary=secondary)


@pytest.fixture(scope="session")
def edge_pair(edge_tls: TlsFiles, edge_media: MediaRelay) -> Iterator[EdgePair]:
    """Two nodes for this test process, with TLS and the session's rtpengine like `edge`."""
    with running_edge_pair(tls=edge_tls, media=edge_media) as pair:
        yield pair


@dataclass
class EdgePairNodes:
    primary: EdgeNode
    secondary: EdgeNode
    carrier: Carrier


@pytest.fixture
def edge_pair_nodes(edge_pair: EdgePair, db: Any, settings: Any) -> Iterator[EdgePairNodes]:
    """Both nodes as rows of this test, with the carrier (a SIPp UAS on the pair's
    carrier_port) pushed to both, and sync on: a profile synced by the real task reaches both.
    A node a test stopped is started again at the end, and both are left with no profile (the
    carriers a test changed are put back by the next test's push)."""
    settings.EDGE_SYNC_ENABLED = True
    for edge in edge_pair.both:
        edge.start()  # a test before this one may have failed with its node stopped
    primary, secondary = node_row(edge_pair.primary), node_row(edge_pair.secondary)
    carrier = Carrier.objects.create(
        name="test carrier", address="127.0.0.1", port=edge_pair.primary.carrier_port, inbound_from=[CARRIER_SOURCE]
    )
    results = services.edge_sync_global()
    assert [(r.node, r.error) for r in results] == [(primary.name, ""), (secondary.name, "")]
    yield EdgePairNodes(primary=primary, secondary=secondary, carrier=carrier)
    for edge in edge_pair.both:
        edge.start()
        forget_profiles(edge)


@pytest.fixture
def edge_worker(tmp_path: Path, settings: Any) -> Iterator[Worker]:
    """A real Celery worker (tests/helpers/workers.py) with sync on, whose retries and
    follow-ups go through the broker as in production (TEST_CELERY_WORKER: not in-process),
    so a failed node is retried with the task's backoff. The test needs
    @pytest.mark.django_db(transaction=True): the worker sees only what is committed."""
    settings.EDGE_SYNC_ENABLED = True
    env = {"TEST_CELERY_WORKER": "1", "EDGE_SYNC_ENABLED": "true", "SIP_DOMAIN": settings.SIP_DOMAIN}
    with celery_worker(tmp_path / "worker.log", env=env) as worker:
        yield worker


def wait_until(condition: Any, what: str, *, timeout: float = 30, explain: Any = None) -> None:
    """Poll `condition` until it is true, or fail saying what did not happen (and `explain()`)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}\n{explain() if explain else ''}")
        time.sleep(0.1)


def forget_profiles(edge: Edge) -> None:
    """Profile ids are never reused (sequences do not roll back), but an IP profile's address
    outlives its rolled-back test and could claim a later test's source port: each test
    leaves the node with no profile."""
    with psycopg.connect(edge.node.database_url, autocommit=True) as conn:
        # The carriers' sources (every test's carrier has the same) stay: no reload per test.
        addresses = conn.execute("SELECT count(*) FROM address WHERE grp <> %s", (CARRIER_GROUP,)).fetchone()
        conn.execute("TRUNCATE subscriber, sm_profile_attrs, sm_routes, location")
        conn.execute("DELETE FROM address WHERE grp <> %s", (CARRIER_GROUP,))
    if addresses and addresses[0]:
        clients.rpc_address_reload(edge.node.rpc_url)
    edge.rpc("htable.reload", "prof")
    edge.rpc("htable.reload", "route")


# --- SIPp -------------------------------------------------------------------------------


def scenario(tmp_path: Path, name: str, expect: int | None = None) -> Path:
    """A scenario file; EXPECT in it becomes the response code the test expects."""
    text = (SCENARIOS / name).read_text()
    if expect is not None:
        text = text.replace("EXPECT", str(expect))
    path = tmp_path / f"{uuid.uuid4().hex[:6]}-{name}"
    path.write_text(text)
    return path


def sipp_command(
    edge: Edge,
    scenario_file: Path,
    *,
    service: str,
    user: str | None = None,
    password: str | None = None,
    port: int | None = None,
    hold_ms: int = 200,
    timeout: int = 10,
) -> list[str]:
    command = [
        "sipp",
        edge.sip,
        "-sf",
        str(scenario_file),
        "-s",
        service,
        "-i",
        "127.0.0.1",
        "-p",
        str(port or free_port()),
        "-m",
        "1",
        "-d",
        str(hold_ms),
        "-timeout",
        f"{timeout}s",
        "-timeout_error",
        "-nostdin",
        "-trace_err",
        "-error_file",
        str(scenario_file.with_suffix(".err.log")),
        "-trace_logs",
        "-log_file",
        str(scenario_file.with_suffix(".log")),
    ]
    if user is not None:
        command += ["-au", user, "-ap", password or ""]
    return command


def run_sipp(command: list[str], *, edge: Edge) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)  # noqa: S603


def explain(command: list[str], result: Any, edge: Edge) -> str:
    scenario_file = Path(command[command.index("-sf") + 1])
    parts = [f"sipp exit {getattr(result, 'returncode', None)}"]
    for suffix in (".err.log", ".log"):
        f = scenario_file.with_suffix(suffix)
        if f.exists():
            parts.append(f"{f.name}:\n{f.read_text()[-3000:]}")
    parts.append(f"kamailio log:\n{edge.log.read_text()[-3000:]}")
    return "\n".join(parts)


class CarrierUas:
    """A SIPp UAS playing the carrier for `calls` calls, in the background."""

    def __init__(
        self,
        edge: Edge,
        tmp_path: Path,
        calls: int = 1,
        timeout: int = 15,
        name: str = "carrier_uas.xml",
        replace: dict[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.edge = edge
        self.file = scenario(tmp_path, name)
        for old, new in (replace or {}).items():
            self.file.write_text(self.file.read_text().replace(old, new))
        command = [
            "sipp",
            "-sf",
            str(self.file),
            "-i",
            "127.0.0.1",
            "-p",
            str(port or edge.carrier_port),
            "-m",
            str(calls),
            "-timeout",
            f"{timeout}s",
            "-timeout_error",
            "-nostdin",
            "-trace_err",
            "-error_file",
            str(self.file.with_suffix(".err.log")),
        ]
        self.command = command
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # noqa: S603
        time.sleep(0.2)  # bound before the first INVITE is sent

    def wait(self) -> int:
        try:
            return self.proc.wait(timeout=20)
        finally:
            self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def carrier(edge: Edge) -> Iterator[Peer]:
    """The carrier as a SIP peer (tests/edge/sip.py) on the port the edge sends its calls to."""
    peer = Peer.bound(ip="127.0.0.1", port=edge.carrier_port, edge=("127.0.0.1", edge.node.sip_port))
    yield peer
    peer.close()


@pytest.fixture
def carrier_listener(edge: Edge) -> Iterator[socket.socket]:
    """A plain socket on the carrier's port: anything the edge sends the carrier lands here."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", edge.carrier_port))
    sock.setblocking(False)
    yield sock
    sock.close()


def received(sock: socket.socket) -> list[bytes]:
    packets = []
    while True:
        try:
            packets.append(sock.recv(65535))
        except BlockingIOError:
            return packets
