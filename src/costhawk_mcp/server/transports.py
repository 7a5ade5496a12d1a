"""Running the server over stdio, SSE or streamable HTTP.

HTTP transports bind 127.0.0.1 unless told otherwise, keep the SDK's DNS-rebinding protection on
(a foreign Host header gets 421, a foreign Origin 403) and, when COSTHAWK_HTTP_TOKEN is set,
require `Authorization: Bearer <token>` on every request (401 otherwise). Serving beyond loopback
needs an explicit `--allow-remote` and logs a warning.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Literal

from mcp.server import MCPServer
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from costhawk_mcp.config import Settings
from costhawk_mcp.errors import InvalidArgument

log = logging.getLogger("costhawk_mcp.server")

Transport = Literal["stdio", "sse", "streamable-http"]
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Idle HTTP connections stay open longer than clients keep theirs (httpx, so the MCP SDK: 5 s; Node: 4-5 s).
# With uvicorn's default of 5 s both sides expire together, and a busy client reuses a connection the
# server is closing at that moment: the request dies with a ReadError (seen under load, about 1 in 500 calls).
KEEP_ALIVE_S = 65


class BearerAuth:
    """ASGI middleware: reject any HTTP request without the configured bearer token."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self._expected):
                body = json.dumps({"error": "unauthorized", "detail": "send Authorization: Bearer <token>"}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b'Bearer realm="costhawk"'),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class RejectBeforeSSE:
    """ASGI middleware: answer a foreign Host (421) or Origin (403) on the SSE stream before the SDK does.

    The SDK's SSE endpoint sends the same answer but then raises, which uvicorn logs as a crashed
    request with a traceback for every rejected probe; checking first keeps that out of the log.
    """

    def __init__(self, app: ASGIApp, security: TransportSecuritySettings) -> None:
        self.app = app
        self._check = TransportSecurityMiddleware(security)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            rejection = await self._check.validate_request(Request(scope, receive), is_post=False)
            if rejection is not None:
                await rejection(scope, receive, send)
                return
        await self.app(scope, receive, send)


def security_for(host: str, allow_remote: bool) -> TransportSecuritySettings:
    """DNS-rebinding protection for `host`: loopback names always, plus `host` itself when remote."""
    if host not in LOOPBACK and not allow_remote:
        raise InvalidArgument(
            "--host", f"{host!r} is not a loopback address; pass --allow-remote to serve beyond this machine"
        )
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    if host not in LOOPBACK:
        hosts += [f"{host}:*", host]
        origins += [f"http://{host}:*", f"https://{host}:*"]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


def http_app(mcp: MCPServer, settings: Settings, transport: Transport, host: str, allow_remote: bool) -> ASGIApp:
    """The ASGI app for an HTTP transport, with transport security and optional bearer auth."""
    security = security_for(host, allow_remote)
    app: ASGIApp
    if transport == "sse":
        app = RejectBeforeSSE(mcp.sse_app(transport_security=security, host=host), security)
    else:
        app = mcp.streamable_http_app(transport_security=security, host=host)
    if settings.http_token:
        app = BearerAuth(app, settings.http_token)
    elif host not in LOOPBACK:
        log.warning("serving on %s without COSTHAWK_HTTP_TOKEN: anyone who can reach it can call every tool", host)
    return app


def serve(
    mcp: MCPServer,
    settings: Settings,
    transport: Transport,
    *,
    host: str,
    port: int,
    allow_remote: bool = False,
) -> None:
    """Run until interrupted (SIGTERM or SIGINT)."""
    if transport == "stdio":
        mcp.run("stdio")
        return
    import uvicorn

    app = http_app(mcp, settings, transport, host, allow_remote)
    if host not in LOOPBACK:
        log.warning("costhawk is listening beyond loopback on %s:%d", host, port)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_S,
    )
    uvicorn.Server(config).run()
