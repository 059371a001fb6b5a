"""Keep-alive connection rotation for the HTTP services (ASGI middleware, no BentoML import).

BentoML's workers accept connections from one shared socket, and a keep-alive connection
stays with the worker that accepted it. When many clients connect at once, one worker can
take all of them while the other idles: with 32 clients on 2 workers, single-window
``classify`` reached 0.97-1.05x of BentoML's no-op floor when the connections spread and
0.54-0.62x when they all landed on one worker (``benchmarks/results/serving-probe-*.json``).
:class:`RotateConnections` answers every ``every``-th request of a connection with
``connection: close``; the client reconnects (HTTP/1.1 clients do), and the new connection
goes to a worker that is waiting in ``accept``, usually the idle one, so the load evens out.
"""

from __future__ import annotations

import os
from typing import Any

# requests per keep-alive connection before the server closes it (0: never); HAR_KEEPALIVE_REQUESTS
KEEPALIVE_REQUESTS = int(os.environ.get("HAR_KEEPALIVE_REQUESTS", 32))
_MAX_TRACKED = 65_536  # connections counted at once (a client that leaves early leaves its count)


class RotateConnections:
    """ASGI middleware: the ``every``-th response on a connection carries ``connection: close``."""

    def __init__(self, app: Any, every: int = KEEPALIVE_REQUESTS):
        self.app, self.every = app, every
        self.counts: dict[tuple[Any, ...], int] = {}  # (client host, port) -> requests so far

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        client = scope.get("client")
        if scope["type"] != "http" or self.every <= 0 or not client:
            await self.app(scope, receive, send)
            return
        key = tuple(client)
        n = self.counts.pop(key, 0) + 1
        if n < self.every:
            if len(self.counts) >= _MAX_TRACKED:
                self.counts.clear()
            self.counts[key] = n
            await self.app(scope, receive, send)
            return

        async def closing(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, closing)
