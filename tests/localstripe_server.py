"""Runs localstripe (a stateful fake Stripe server, PyPI `localstripe`) on 127.0.0.1:<port>, its store kept in
<store path>: localstripe itself listens on every interface and keeps its store in one fixed /tmp file.

    python tests/localstripe_server.py <port> <store path>"""

import pickle
import sys

from aiohttp import web
from localstripe import resources
from localstripe.server import app


def main() -> None:
    port, path = int(sys.argv[1]), sys.argv[2]

    def load(store):
        try:
            with open(path, "rb") as f:
                saved = pickle.load(f)
        except FileNotFoundError:
            return
        dict.clear(store)
        dict.update(store, saved)

    def dump(store):
        with open(path, "wb") as f:
            pickle.dump(store, f, protocol=pickle.HIGHEST_PROTOCOL)

    resources.Store.try_load_from_disk = load
    resources.Store.dump_to_disk = dump
    resources.store.try_load_from_disk()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
