"""Edge nodes as the pages that show them need: two nodes with public host names."""

from __future__ import annotations

from apps.edge.models import EdgeNode


def two_edge_nodes(
    *, primary: str = "edge1", secondary: str = "edge2", secondary_ports: tuple[int, int] = (5080, 5081)
) -> tuple[EdgeNode, EdgeNode]:
    """The primary sip1.example.com (203.0.113.10, SIP 5060, TLS 5061) and the secondary
    sip2.example.com (198.51.100.10, `secondary_ports`). The secondary is created first, so an
    order on a page must come from the role, not from the table. Nothing connects to their RPC
    or database addresses in the tests that use them."""
    second = EdgeNode.objects.create(
        name=secondary, role="secondary", sip_host="198.51.100.10", sip_port=secondary_ports[0],
        tls_port=secondary_ports[1], rpc_url="http://10.0.1.10:5071/RPC",
        database_url="postgres://k@10.0.1.10/edge2", public_host="sip2.example.com",
    )  # fmt: skip
    first = EdgeNode.objects.create(
        name=primary, role="primary", sip_host="203.0.113.10", sip_port=5060, tls_port=5061,
        rpc_url="http://10.0.0.10:5071/RPC", database_url="postgres://k@10.0.0.10/edge1",
        public_host="sip1.example.com",
    )  # fmt: skip
    return first, second
