"""Running the app on a local port in a background thread (tests, the load benchmark, screenshots)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server


class QuietHandler(WSGIRequestHandler):
    """No line per request on stderr (tests and benchmarks make thousands)."""

    def log_request(self, code="-", size="-") -> None:
        pass


@contextmanager
def running(app: Flask, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` with werkzeug's threaded server until the block ends; yields the base URL.

    Args:
        app: the Flask app.
        host: address to bind (loopback by default).
        port: 0 picks a free port.
    """
    server = make_server(host, port, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
