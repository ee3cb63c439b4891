from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.edge.services import NodeResult, edge_sync_global, edge_sync_profile
from apps.sip_profiles.models import SipProfile


class Command(BaseCommand):
    help = "Provision now and wait: the shared lists, then one profile (--profile) or every live one."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--profile", type=int, help="profile id (default: every live profile)")
        parser.add_argument("--node", action="append", help="only this node (repeatable)")

    def handle(self, *args: Any, **options: Any) -> None:
        nodes = options["node"]
        failed = self._print("shared lists", edge_sync_global(node_names=nodes))
        if options["profile"]:
            ids = [options["profile"]]
        else:
            ids = list(SipProfile.objects.live().order_by("pk").values_list("pk", flat=True))
        for pid in ids:
            failed |= self._print(f"profile {pid}", edge_sync_profile(profile_id=pid, node_names=nodes))
        if failed:
            raise CommandError("some nodes failed (see above)")

    def _print(self, what: str, results: list[NodeResult]) -> bool:
        failed = False
        for r in results:
            if r.error:
                failed = True
                self.stdout.write(f"{r.node}: {what}: FAILED: {r.error}")
            elif r.changes:
                self.stdout.write(f"{r.node}: {what}: {'; '.join(r.changes)}")
            else:
                self.stdout.write(f"{r.node}: {what}: unchanged")
        return failed
