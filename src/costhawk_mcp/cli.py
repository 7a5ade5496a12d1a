"""`costhawk-mcp`: the command line. Each subcommand lives in `costhawk_mcp.commands.<name>`.

stdout carries a command's answer (and, under `serve --transport stdio`, only the protocol);
diagnostics and progress go to stderr. Expected failures print one line, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import keyword
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from costhawk_mcp import __version__
from costhawk_mcp.config import Settings
from costhawk_mcp.errors import CosthawkError

# Imported only when chosen, so `serve` does not pay for `import` or `demo`.
COMMANDS: dict[str, str] = {
    "serve": "Run the MCP server (stdio by default).",
    "pricing": "Show model prices or update the price catalog.",
    "import": "Import request logs (JSON Lines, CSV, raw OpenAI/Anthropic responses).",
    "sync": "Pull usage, costs and API key names from the OpenAI and Anthropic admin APIs.",
    "demo": "Build a demo dataset and show the server answering real tool calls on it.",
}


def _module(name: str) -> ModuleType:
    module = name.replace("-", "_")
    if keyword.iskeyword(module):  # `import` lives in commands/import_.py
        module += "_"
    return importlib.import_module(f"costhawk_mcp.commands.{module}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with `only`, just that subcommand's module is imported."""
    parser = argparse.ArgumentParser(
        prog="costhawk-mcp", description="Cost intelligence about your team's LLM API spend, served over MCP."
    )
    parser.add_argument("--version", action="version", version=f"costhawk-mcp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or only == name:
            _module(name).add_arguments(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `costhawk-mcp` script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in args_list if not a.startswith("-")), None)
    parser = build_parser(chosen if chosen in COMMANDS else None)
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        settings = Settings.from_env(db=getattr(args, "db", None))
        logging.basicConfig(
            level=settings.log_level,
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        result: int = _module(args.command).run(args, settings)
        return result
    except CosthawkError as exc:
        print(f"costhawk-mcp {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
