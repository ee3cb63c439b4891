from __future__ import annotations

import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.edge.models import EdgeNode
from apps.edge.services import EdgeNodeConfigError, kamailio_command, rtpengine_command


class Command(BaseCommand):
    help = "edge_run --node NAME: run the node's Kamailio (and rtpengine) in the foreground until SIGTERM."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--node", required=True)
        parser.add_argument("--print", action="store_true", help="only print the command lines")

    def handle(self, *args: Any, **options: Any) -> None:
        node = EdgeNode.objects.filter(name=options["node"]).first()
        if node is None:
            raise CommandError(f"no edge node {options['node']!r}")
        runtime_dir = tempfile.mkdtemp(prefix=f"kamailio-{node.name}-")
        try:
            commands = [c for c in (rtpengine_command(node), kamailio_command(node, runtime_dir=runtime_dir)) if c]
        except EdgeNodeConfigError as exc:
            shutil.rmtree(runtime_dir, ignore_errors=True)
            raise CommandError(str(exc)) from exc
        if options["print"]:
            shutil.rmtree(runtime_dir, ignore_errors=True)
            for command in commands:
                self.stdout.write(shlex.join(command))
            return
        procs: list[subprocess.Popen[bytes]] = []
        stopping = False

        def stop(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            for command in commands:
                self.stdout.write(f"+ {shlex.join(command)}")
                procs.append(subprocess.Popen(command))  # noqa: S603
            while not stopping and all(p.poll() is None for p in procs):
                time.sleep(0.2)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            shutil.rmtree(runtime_dir, ignore_errors=True)
        codes = [p.returncode for p in procs]
        if not stopping:
            raise CommandError(f"a process exited on its own: {codes}")
        self.stdout.write(f"stopped ({codes})")
