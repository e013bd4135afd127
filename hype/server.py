"""Running the app locally: in a background thread, or as ``human_eval.py serve`` in a child process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

ROOT = Path(__file__).resolve().parent.parent  # the checkout holding human_eval.py


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


def serve_process(args: list[str], port: int = 0, root: Path = ROOT) -> tuple[subprocess.Popen, str]:
    """Start ``human_eval.py serve ARGS --port PORT`` in a child process; returns it and its base URL.

    The child imports this checkout's code (``root`` goes first on its ``PYTHONPATH``). The URL is
    read from the line the server prints at start; stop the child with SIGINT (or SIGKILL to test a
    crash).
    """
    env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, str(root / "human_eval.py"), "serve", *args, "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    for line in proc.stdout:
        found = re.search(r"evaluators: (http://\S+)/", line)
        if found:
            return proc, found.group(1)
    raise RuntimeError(f"human_eval.py serve did not start (exit code {proc.wait()})")
