"""Request-size limits applied before a body is read: a pure ASGI middleware.

Content-Length over the limit is answered with 413 before reading; a chunked body
is counted as it arrives and cut off at the limit.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import ChainlensError, RequestTooLarge, limit_text


class UnsupportedMediaType(ChainlensError):
    code = "unsupported_media_type"


class BodyLimitMiddleware:
    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> RequestTooLarge:
        return RequestTooLarge(
            limit_text("max_body_bytes", self.max_bytes, "exceeded by the request body")
        )

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = self.max_bytes + 1
        if length is not None and length > self.max_bytes:
            body = orjson.dumps({"error": self._too_large().to_dict()})
            await send(
                {
                    "type": "http.response.start",
                    "status": 413,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        seen = 0

        async def limited_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise self._too_large()
            return message

        await self.app(scope, limited_receive, send)
