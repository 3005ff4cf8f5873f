"""A bare ASGI app answering one feed's bytes: the ceiling of this server stack, for comparison."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

BODY = Path(sys.argv[1]).read_bytes()
ETAG = sys.argv[2].encode()
HEADERS = [(b"content-type", b"text/calendar; charset=utf-8"), (b"etag", ETAG)]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:  # noqa: ANN401
    """200 with the feed, or 304 when If-None-Match names its ETag."""
    del receive
    matched = any(k == b"if-none-match" and v == ETAG for k, v in scope["headers"])
    if matched:
        await send({"type": "http.response.start", "status": 304, "headers": HEADERS})
        await send({"type": "http.response.body", "body": b""})
        return
    length = [(b"content-length", str(len(BODY)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS + length})
    await send({"type": "http.response.body", "body": BODY})


if __name__ == "__main__":
    import uvicorn

    from eventwatch.daemon import _Server

    config = uvicorn.Config(app, host="127.0.0.1", port=int(sys.argv[3]), log_config=None,
                            access_log=False, lifespan="off", server_header=False)  # fmt: skip
    _Server(config).run()
