"""The MCP server: `build_server` wires the handlers; `transports` runs it over stdio, SSE or HTTP."""

from costhawk_mcp.server.build import build_server

__all__ = ["build_server"]
