"""Builds the MCP server for one set of settings."""

from __future__ import annotations

import importlib
from typing import Literal

from mcp.server import MCPServer

from costhawk_mcp import __version__
from costhawk_mcp.config import Settings
from costhawk_mcp.server.app import App
from costhawk_mcp.server.guard import StrictArguments

# Handler modules under costhawk_mcp.server. Each has `register(mcp, app)` and an `INSTRUCTIONS`
# paragraph telling an assistant what its tools are for.
TOOL_MODULES: tuple[str, ...] = (
    "pricing_tools",
    "usage_tools",
    "spend_tools",
    "insight_tools",
    "sync_tools",
    "prompts",
)

PREAMBLE = """\
costhawk answers questions about LLM API cost: model prices, what a prompt will cost, and a team's \
own spend (by key, project, model, feature and query). All money is US dollars, exact to the \
nano-dollar; every result says when a figure is approximate, which data sources answered, and \
which models could not be priced. Report those caveats to the user.
"""

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def build_server(settings: Settings, *, app: App | None = None) -> MCPServer:
    """A server with every tool, resource and prompt registered; nothing heavy is loaded yet.

    `app` lets a test share the server's catalog and store (e.g. an in-memory database) to inspect them.
    """
    app = app if app is not None else App(settings)
    modules = [importlib.import_module(f"costhawk_mcp.server.{name}") for name in TOOL_MODULES]
    instructions = "\n".join([PREAMBLE, *(module.INSTRUCTIONS for module in modules)])
    mcp: MCPServer = MCPServer("costhawk", version=__version__, instructions=instructions, log_level=_level(settings))
    for module in modules:
        module.register(mcp, app)
    mcp.middleware.append(StrictArguments(mcp))  # unknown argument names are refused, not ignored
    return mcp


def _level(settings: Settings) -> LogLevel:
    for known in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        if settings.log_level == known:
            return known
    return "WARNING"
