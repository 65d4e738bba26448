"""Run any ASGI app under a real uvicorn server on a free loopback port, for the test's duration.

The socket is bound here (port 0, so the OS picks a free port) and handed to uvicorn, so there is
no window in which another process could take the port. The server runs its own event loop in a
daemon thread; leaving the context asks it to exit and waits for it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

__all__ = ["run_asgi"]


@contextmanager
def run_asgi(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    startup_timeout_s: float = 10.0,
    shutdown_timeout_s: float = 10.0,
    proxy_headers: bool = True,
) -> Iterator[str]:
    """Serve `app` and yield its base URL, e.g. "http://127.0.0.1:54321". `proxy_headers=False`
    keeps uvicorn from taking the client's address from X-Forwarded-For (as `tggate intake`
    runs)."""
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY on accepted connections only when
    # the listening socket names its protocol, and without it every answer waits ~40 ms (Nagle
    # against delayed ACKs).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_config=None,  # keep pytest's logging setup (caplog) intact
        access_log=False,
        lifespan="auto",
        loop="asyncio",
        ws="none",
        proxy_headers=proxy_headers,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)  # outside the main thread it leaves signals alone
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as error:  # reported to the test thread below
            failure.append(error)

    thread = threading.Thread(target=serve, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout_s
        while not server.started:
            if failure or not thread.is_alive():
                raise RuntimeError(f"the server on port {port} failed to start") from (
                    failure[0] if failure else None
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server on port {port} did not start in time")
            time.sleep(0.01)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(shutdown_timeout_s)
        sock.close()
        if thread.is_alive():
            raise RuntimeError(f"the server on port {port} did not stop in time")
