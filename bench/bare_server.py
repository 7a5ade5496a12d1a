"""The baseline of bench_cold_start.py: a bare MCPServer with one tool, served over stdio.

It pays exactly what any `mcp` server pays to start (the interpreter and the SDK's imports), so
the ratio to it shows what costhawk adds on top.
"""

from mcp.server import MCPServer

mcp = MCPServer("bare", version="0.0.0")


@mcp.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


if __name__ == "__main__":
    mcp.run("stdio")
