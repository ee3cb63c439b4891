"""Serve localstripe (a local imitation of the Stripe API) on loopback, state in memory.

    .venv/bin/python scripts/localstripe_server.py --port 8420

`localstripe --port P` binds every interface and pickles its state to a fixed
/tmp/localstripe.pickle shared by every run on the machine; this serves the same aiohttp
app on 127.0.0.1 only and never writes to disk, so parallel test workers do not share state.
`DELETE /_config/data` empties it; `POST /_config/webhooks/<id>` registers a webhook.
The tests start it (tests/billing/stripe_fixtures.py); `make run` may too.
"""

from __future__ import annotations

import argparse
import logging

from aiohttp import web
from localstripe import resources, server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()

    # The store calls dump_to_disk() after every change; an instance attribute shadows the method.
    resources.store.dump_to_disk = lambda: None  # type: ignore[method-assign]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s localstripe %(message)s")
    web.run_app(server.app, host=args.host, port=args.port, print=None, access_log=logging.getLogger("aiohttp.access"))


if __name__ == "__main__":
    main()
