"""`python -m costhawk_mcp` runs the command-line interface."""

from costhawk_mcp.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
