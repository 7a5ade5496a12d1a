"""costhawk-mcp: cost intelligence about a team's LLM API spend, served over MCP.

Nothing heavy is imported here so that `costhawk-mcp serve` starts fast.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
