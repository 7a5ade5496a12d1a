"""`costhawk-mcp serve`: run the MCP server."""

from __future__ import annotations

import argparse

from costhawk_mcp.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `serve`."""
    parser.add_argument("--transport", choices=["stdio", "sse", "streamable-http"], default="stdio")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind for HTTP transports (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port for HTTP transports (default 8000)")
    parser.add_argument("--db", help="DuckDB file (default $COSTHAWK_DB or ~/.costhawk/costhawk.duckdb)")
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host (set COSTHAWK_HTTP_TOKEN too)",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Serve until interrupted."""
    from costhawk_mcp.server import build_server
    from costhawk_mcp.server.transports import serve

    serve(
        build_server(settings),
        settings,
        args.transport,
        host=args.host,
        port=args.port,
        allow_remote=args.allow_remote,
    )
    return 0
