"""The README is the user's contract: every tool, resource, prompt, variable and command is in it."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp.client import Client

from costhawk_mcp.cli import COMMANDS
from costhawk_mcp.config import ENV_VARS, Settings
from costhawk_mcp.server import build_server

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


@pytest.mark.anyio
async def test_every_tool_resource_and_prompt_is_documented_in_the_readme(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        tools = [t.name for t in (await client.list_tools()).tools]
        resources = [str(r.uri) for r in (await client.list_resources()).resources]
        templates = [
            t.uri_template.replace("{+", "{") for t in (await client.list_resource_templates()).resource_templates
        ]
        prompts = [p.name for p in (await client.list_prompts()).prompts]
    missing = [name for name in [*tools, *resources, *templates, *prompts] if f"`{name}`" not in README]
    assert not missing, f"not in README.md: {missing}"


def test_every_environment_variable_is_documented_in_the_readme() -> None:
    missing = [name for name in ENV_VARS if f"`{name}`" not in README]
    assert not missing, f"not in README.md: {missing}"


def test_every_cli_command_is_documented_in_the_readme() -> None:
    missing = [name for name in COMMANDS if f"costhawk-mcp {name}" not in README]
    assert not missing, f"not in README.md: {missing}"


def test_the_readme_states_the_two_commands() -> None:
    assert "make demo" in README and "make test" in README
