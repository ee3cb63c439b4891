"""localstripe for the fault test: on 127.0.0.1, its state kept in a file of the test's own.

    python tests/faults/localstripe_server.py --port P --state DIR/localstripe.pickle

Like scripts/localstripe_server.py, but the state outlives the process: the test stops and
restarts "Stripe", and real Stripe does not forget the payments it took while it was away. The
whole store is written after every request, before the answer leaves (localstripe changes its
objects in place, so its own write-on-assignment would miss changes of status). Webhook
registrations are not part of the store: the test registers its endpoint again after a start.
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from localstripe import resources, server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, required=True)
    args = parser.parse_args()
    state: Path = args.state

    store = resources.store
    if state.exists():
        with state.open("rb") as saved:
            dict.update(store, pickle.load(saved))  # noqa: S301 - our own file, written below

    def dump() -> None:
        partial = state.with_suffix(".partial")
        with partial.open("wb") as out:
            pickle.dump(dict(store), out, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(partial, state)  # never a half-written file, even if killed mid-write

    store.dump_to_disk = lambda: None  # type: ignore[method-assign]

    @web.middleware
    async def persist(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        finally:
            if request.method != "GET":
                dump()

    server.app.middlewares.append(persist)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s localstripe %(message)s")
    web.run_app(
        server.app, host="127.0.0.1", port=args.port, print=None, access_log=logging.getLogger("aiohttp.access")
    )


if __name__ == "__main__":
    main()
