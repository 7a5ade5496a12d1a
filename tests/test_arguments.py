"""Argument names are checked, not just values: a misspelt name is refused instead of silently defaulting.

The SDK drops argument names a tool does not declare, so `moedl` would quietly fall back to the default
model; `guard.StrictArguments` refuses the call, names the argument, suggests the close match and lists
what is allowed. Prompts get the same check as INVALID_PARAMS protocol errors.
"""

from __future__ import annotations

import pytest
from mcp import MCPError
from mcp.client import Client
from mcp.types import INVALID_PARAMS

from client_support import call_error
from costhawk_mcp.config import Settings
from costhawk_mcp.server.build import build_server

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("test_catalog")]


async def test_a_misspelt_argument_is_refused_with_the_close_match_and_the_allowed_names(settings: Settings) -> None:
    text = await call_error(settings, "estimate_prompt", {"moedl": "test-gpt", "model": "test-gpt", "text": "hi"})
    assert "unknown argument 'moedl' (did you mean 'model'?)" in text
    assert "allowed: model, " in text and "text" in text


async def test_several_unknown_arguments_are_all_named_and_a_huge_name_is_cut_short(settings: Settings) -> None:
    huge = "x" * 5000
    text = await call_error(settings, "top_expensive_keys", {"dayz": 7, huge: 1})
    assert "unknown arguments 'dayz' (did you mean 'days'?), 'xxxx" in text
    assert "(5000 characters)" in text and huge not in text


async def test_a_tool_without_arguments_says_it_takes_none(settings: Settings) -> None:
    text = await call_error(settings, "list_budgets", {"verbose": True})
    assert "unknown argument 'verbose'; allowed: none (it takes no arguments)" in text


async def test_prompts_refuse_unknown_names_and_missing_required_arguments(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        with pytest.raises(MCPError) as unknown_prompt:
            await client.get_prompt("weekly_review", {})
        assert unknown_prompt.value.error.code == INVALID_PARAMS
        assert "unknown prompt 'weekly_review'; available: " in unknown_prompt.value.error.message
        assert "weekly_cost_review" in unknown_prompt.value.error.message
        with pytest.raises(MCPError) as unknown_argument:
            await client.get_prompt("investigate_spike", {"dat": "2026-11-10"})
        assert unknown_argument.value.error.code == INVALID_PARAMS
        assert "prompt investigate_spike: unknown argument 'dat' (did you mean 'date'?)" in (
            unknown_argument.value.error.message
        )
        rendered = await client.get_prompt("investigate_spike", {"date": "2026-11-10"})
        assert rendered.messages
