from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.exceptions import ApplicationError
from apps.edge.models import Carrier
from apps.edge.services import carrier_upsert


class Command(BaseCommand):
    help = "Add or update an upstream carrier: edge_carrier add NAME --address A --port P ..."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="add a carrier, or update the one of that name")
        add.add_argument("name")
        add.add_argument("--address", required=True)
        add.add_argument("--port", type=int, required=True)
        add.add_argument("--transport", choices=Carrier.Transport.values, default=Carrier.Transport.UDP)
        add.add_argument("--priority", type=int, default=0)
        add.add_argument("--inbound-from", nargs="*", default=[], metavar="ADDR")
        sub.add_parser("list", help="list the carriers")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "list":
            for c in Carrier.objects.all():
                self.stdout.write(f"{c.name}\t{c.sip_uri}\tpriority {c.priority}\tfrom {','.join(c.inbound_from)}")
            return
        try:
            carrier, created = carrier_upsert(
                name=options["name"],
                address=options["address"],
                port=options["port"],
                transport=options["transport"],
                priority=options["priority"],
                inbound_from=options["inbound_from"],
            )
        except ApplicationError as exc:
            raise CommandError(f"--inbound-from: {exc.message}") from exc
        self.stdout.write(f"{'added' if created else 'updated'} carrier {carrier.name} ({carrier.sip_uri})")
