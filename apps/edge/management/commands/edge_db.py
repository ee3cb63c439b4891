from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.edge.clients import EdgeNodeError
from apps.edge.models import EdgeNode
from apps.edge.services import edge_db_init


class Command(BaseCommand):
    help = "edge_db init --node NAME: apply Kamailio's module tables and ours to the node's database (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        init = sub.add_parser("init")
        init.add_argument("--node", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        node = EdgeNode.objects.filter(name=options["node"]).first()
        if node is None:
            raise CommandError(f"no edge node {options['node']!r} (add it with edge_node add)")
        try:
            applied = edge_db_init(node=node)
        except EdgeNodeError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{node.name}: applied {', '.join(applied)}")
