from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.edge.models import EdgeNode
from apps.edge.services import edge_node_upsert


class Command(BaseCommand):
    help = "Add or update an edge node: edge_node add NAME --role primary --sip-host H ..."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="add a node, or update the one of that name")
        add.add_argument("name")
        add.add_argument("--role", choices=EdgeNode.Role.values, required=True)
        add.add_argument("--sip-host", required=True)
        add.add_argument("--sip-port", type=int, required=True)
        add.add_argument("--tls-port", type=int)
        add.add_argument("--tls-certificate", default="", help="PEM certificate file on the node's host")
        add.add_argument("--tls-private-key", default="", help="PEM private key file on the node's host")
        add.add_argument("--rpc-url", required=True)
        add.add_argument("--database-url", required=True)
        add.add_argument("--rtpengine", default="", help="HOST:PORT of its rtpengine control socket")
        add.add_argument("--public-host", default="")
        sub.add_parser("list", help="list the nodes")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "list":
            for node in EdgeNode.objects.all():
                self.stdout.write(f"{node.name}\t{node.role}\t{node.sip_host}:{node.sip_port}\t{node.rpc_url}")
            return
        node, created = edge_node_upsert(
            name=options["name"],
            role=options["role"],
            sip_host=options["sip_host"],
            sip_port=options["sip_port"],
            tls_port=options["tls_port"],
            tls_certificate=options["tls_certificate"],
            tls_private_key=options["tls_private_key"],
            rpc_url=options["rpc_url"],
            database_url=options["database_url"],
            rtpengine=options["rtpengine"],
            public_host=options["public_host"],
        )
        self.stdout.write(f"{'added' if created else 'updated'} edge node {node.name}")
