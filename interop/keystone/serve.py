"""Serve Keystone's WSGI application on loopback; runs INSIDE the Keystone virtual environment.

    python serve.py --config keystone.conf [--port 0]

Prints ``port N`` once it listens (``--port 0`` picks a free port), then serves until killed. A
threading WSGI server from the standard library is enough for tests: Keystone is the application.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socketserver
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    os.environ["OS_KEYSTONE_CONFIG_FILES"] = os.path.abspath(args.config)
    del sys.argv[1:]  # oslo.config parses the command line too, and knows none of ours
    from keystone.server.wsgi import initialize_public_application

    app = initialize_public_application()
    httpd = make_server("127.0.0.1", args.port, app, server_class=_Server, handler_class=_Quiet)
    print(f"port {httpd.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        httpd.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
