"""The built-in demo: a generated dataset and a scripted MCP client session."""
