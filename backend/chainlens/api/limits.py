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
    def __init__(
        self, app: Any, max_bytes: int, larger: dict[str, tuple[str, int]] | None = None
    ) -> None:
        """``larger``: by path, the limit (its setting's name and value) of a route that
        takes more than ``max_bytes`` (an imported Run)."""
        self.app = app
        self.max_bytes = max_bytes
        self.larger = larger or {}

    def _too_large(self, name: str, value: int) -> RequestTooLarge:
        return RequestTooLarge(limit_text(name, value, "exceeded by the request body"))

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        name, max_bytes = self.larger.get(scope.get("path", ""), ("max_body_bytes", self.max_bytes))
        length = None
        for header, value in scope.get("headers", ()):
            if header == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = max_bytes + 1
        if length is not None and length > max_bytes:
            body = orjson.dumps({"error": self._too_large(name, max_bytes).to_dict()})
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
                if seen > max_bytes:
                    raise self._too_large(name, max_bytes)
            return message

        await self.app(scope, limited_receive, send)
