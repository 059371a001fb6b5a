"""Keep-alive rotation (har_runtime.connections): the every-th response of a connection closes it."""

from __future__ import annotations

import asyncio

from har_runtime.connections import RotateConnections


async def _app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"[]"})


def _request(mw: RotateConnections, client: tuple[str, int] | None, kind: str = "http") -> list[tuple[bytes, bytes]]:
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    asyncio.run(mw({"type": kind, "client": client}, None, send))
    starts = [m for m in sent if m["type"] == "http.response.start"]
    return starts[0]["headers"] if starts else []


def _closes(headers) -> bool:
    return (b"connection", b"close") in headers


def test_every_nth_response_of_a_connection_says_close():
    mw = RotateConnections(_app, every=3)
    a, b = ("127.0.0.1", 50001), ("127.0.0.1", 50002)
    got = [_closes(_request(mw, a)) for _ in range(7)]
    assert got == [False, False, True, False, False, True, False]  # counted again after each close
    assert [_closes(_request(mw, b)) for _ in range(3)] == [False, False, True]  # per connection
    assert _request(mw, a) == [(b"content-type", b"application/json")]  # the app's headers kept


def test_rotation_off_and_non_http_scopes_pass_through():
    off = RotateConnections(_app, every=0)
    assert not any(_closes(_request(off, ("127.0.0.1", 1))) for _ in range(100))
    mw = RotateConnections(_app, every=1)
    assert _closes(_request(mw, ("127.0.0.1", 2)))
    assert not _closes(_request(mw, None))  # no client address (e.g. a unix socket): nothing to count
    assert mw.counts == {}
