"""The pricing:// resources and the server's self-description, through an in-memory MCP client."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from mcp import MCPError
from mcp.client import Client
from mcp.server import MCPServer

from costhawk_mcp.config import Settings
from costhawk_mcp.server import build_server

pytestmark = pytest.mark.anyio

# The flat fields the issue promises on every model in pricing://models.
ISSUE_FIELDS = {
    "model",
    "provider",
    "input_per_mtok",
    "output_per_mtok",
    "cached_input_per_mtok",
    "cache_write_per_mtok",
    "cache_write_1h_per_mtok",
    "batch_input_per_mtok",
    "batch_output_per_mtok",
    "long_context",
    "context_window",
    "max_output_tokens",
    "effective_from",
    "deprecation_date",
    "source",
    "aliases",
}
TEST_PRICING = Path(__file__).parent / "data" / "test_pricing.json"
TEST_MODELS = ["test-gpt", "test-gpt-mini", "test-legacy", "test-claude", "test-gemini", "test-embed"]


@pytest.fixture(scope="module")
def test_server(tmp_path_factory: pytest.TempPathFactory) -> MCPServer:
    """One server per module over tests/data/test_pricing.json, installed as the test_catalog fixture does."""
    home = tmp_path_factory.mktemp("costhawk-home")
    shutil.copy(TEST_PRICING, home / "pricing.json")
    return build_server(Settings.from_env({"COSTHAWK_HOME": str(home)}))


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> MCPServer:
    """One server per module over the packaged catalog (data/pricing.json)."""
    return build_server(Settings.from_env({"COSTHAWK_HOME": str(tmp_path_factory.mktemp("costhawk-home"))}))


async def read_json(server: MCPServer, uri: str) -> Any:
    """Read a resource and parse its JSON text."""
    async with Client(server) as client:
        result = await client.read_resource(uri)
    (content,) = result.contents
    assert content.mime_type == "application/json"
    return json.loads(content.text)  # type: ignore[union-attr]


async def read_error(server: MCPServer, uri: str) -> MCPError:
    """Read a resource that must fail with a protocol error."""
    async with Client(server) as client:
        with pytest.raises(MCPError) as raised:
            await client.read_resource(uri)
    return raised.value


async def test_resources_and_templates_are_listed(real_server: MCPServer) -> None:
    async with Client(real_server) as client:
        resources = (await client.list_resources()).resources
        templates = (await client.list_resource_templates()).resource_templates
    assert ("pricing://models", "application/json") in [(str(r.uri), r.mime_type) for r in resources]
    pricing = [t for t in templates if t.uri_template.startswith("pricing://")]
    assert {t.uri_template for t in pricing} == {"pricing://models/{+model}", "pricing://providers/{provider}"}
    assert all(t.description and t.mime_type == "application/json" for t in pricing)


async def test_models_resource_lists_every_model_with_the_issue_fields(test_server: MCPServer) -> None:
    models = await read_json(test_server, "pricing://models")
    assert [m["model"] for m in models] == TEST_MODELS
    for model in models:
        assert set(model) >= ISSUE_FIELDS, ISSUE_FIELDS - set(model)
        assert model["history"] is None  # history is on the single-model resource only
    claude = models[3]
    assert (claude["provider"], claude["input_per_mtok"], claude["output_per_mtok"]) == ("anthropic", 3, 15)
    assert (claude["cached_input_per_mtok"], claude["cache_write_per_mtok"], claude["cache_write_1h_per_mtok"]) == (
        0.3,
        3.75,
        6,
    )
    assert (claude["batch_input_per_mtok"], claude["batch_output_per_mtok"]) == (1.5, 7.5)
    assert claude["long_context"]["threshold_tokens"] == 200000
    assert (claude["long_context"]["input_per_mtok"], claude["long_context"]["output_per_mtok"]) == (6, 22.5)
    assert (claude["context_window"], claude["max_output_tokens"]) == (1000000, 64000)
    assert claude["aliases"] == ["test-claude-20260101", "anthropic/test-claude"]
    assert claude["token_count_method"] == "approximate"
    gpt = models[0]
    assert (gpt["input_per_mtok"], gpt["output_per_mtok"], gpt["effective_from"]) == (2, 8, "2026-06-01")
    assert gpt["token_count_method"] == "exact"
    legacy = models[2]
    assert (legacy["deprecation_date"], legacy["successor"]) == ("2025-01-01", "test-gpt")


async def test_real_catalog_resource_covers_every_provider(real_server: MCPServer) -> None:
    models = await read_json(real_server, "pricing://models")
    assert {m["provider"] for m in models} == {"openai", "anthropic", "google", "mistral", "deepseek", "xai"}
    by_name = {m["model"]: m for m in models}
    for name in ("o3", "gpt-4o", "claude-sonnet-4-5", "gemini-2.5-flash"):
        assert set(by_name[name]) >= ISSUE_FIELDS
    assert (by_name["gpt-4o"]["input_per_mtok"], by_name["gpt-4o"]["output_per_mtok"]) == (2.5, 10)


async def test_single_model_resource_carries_the_price_history(test_server: MCPServer) -> None:
    gpt = await read_json(test_server, "pricing://models/test-gpt")
    assert gpt["model"] == "test-gpt" and (gpt["input_per_mtok"], gpt["output_per_mtok"]) == (2, 8)
    assert gpt["history"] == [
        {
            "input_per_mtok": 10.0,
            "output_per_mtok": 40.0,
            "cached_input_per_mtok": 5.0,
            "cache_write_per_mtok": None,
            "cache_write_1h_per_mtok": None,
            "batch_input_per_mtok": 5.0,
            "batch_output_per_mtok": 20.0,
            "batch_cached_input_per_mtok": None,
            "batch_cache_write_per_mtok": None,
            "priority_input_per_mtok": None,
            "priority_output_per_mtok": None,
            "flex_input_per_mtok": None,
            "flex_output_per_mtok": None,
            "effective_from": None,
            "effective_to": "2026-06-01",
            "long_context": None,
            "source": None,
        }
    ]
    assert (await read_json(test_server, "pricing://models/test-claude"))["history"] == []


@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        ("test-gpt", "test-gpt"),
        ("TEST-GPT", "test-gpt"),
        ("test-gpt-2026-01-01", "test-gpt"),
        ("test-gpt-2026-09-15", "test-gpt"),
        ("openai/test-gpt", "test-gpt"),
        ("ft:test-gpt-2026-01-01:org::abc123", "test-gpt"),
        ("anthropic/test-claude", "test-claude"),
        ("gemini/test-gemini", "test-gemini"),
        ("models/test-gemini", "test-gemini"),
        ("openai%2Ftest-gpt", "test-gpt"),
    ],
)
async def test_model_resource_resolves_every_alias_form(test_server: MCPServer, path: str, canonical: str) -> None:
    assert (await read_json(test_server, f"pricing://models/{path}"))["model"] == canonical


@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        ("openai/gpt-4o", "gpt-4o"),
        ("GPT-4o-2024-08-06", "gpt-4o"),
        ("gemini/gemini-2.5-flash", "gemini-2.5-flash"),
        ("models/gemini-2.5-flash", "gemini-2.5-flash"),
        ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5"),
        ("ft:gpt-4o-2024-08-06:org::abc123", "ft:gpt-4o-2024-08-06"),
        ("o3", "o3"),
    ],
)
async def test_real_catalog_model_resource_resolves_aliases(real_server: MCPServer, path: str, canonical: str) -> None:
    assert (await read_json(real_server, f"pricing://models/{path}"))["model"] == canonical


async def test_real_catalog_o3_resource_shows_its_older_price(real_server: MCPServer) -> None:
    o3 = await read_json(real_server, "pricing://models/o3")
    assert (o3["input_per_mtok"], o3["output_per_mtok"], o3["effective_from"]) == (2, 8, "2025-06-10")
    assert [(p["input_per_mtok"], p["output_per_mtok"], p["effective_to"]) for p in o3["history"]] == [
        (10, 40, "2025-06-10")
    ]


async def test_provider_resource_accepts_provider_aliases(test_server: MCPServer) -> None:
    google = await read_json(test_server, "pricing://providers/google")
    assert [m["model"] for m in google] == ["test-gemini"]
    assert await read_json(test_server, "pricing://providers/gemini") == google
    assert await read_json(test_server, "pricing://providers/Gemini") == google
    openai = await read_json(test_server, "pricing://providers/openai")
    assert [m["model"] for m in openai] == ["test-gpt", "test-gpt-mini", "test-legacy", "test-embed"]
    assert await read_json(test_server, "pricing://providers/mistral") == []  # known provider, no models here


async def test_real_catalog_provider_resource_gemini_is_google(real_server: MCPServer) -> None:
    google = await read_json(real_server, "pricing://providers/google")
    assert "gemini-2.5-flash" in {m["model"] for m in google}
    assert await read_json(real_server, "pricing://providers/gemini") == google


async def test_unknown_model_resource_is_an_error_with_suggestions(test_server: MCPServer) -> None:
    error = await read_error(test_server, "pricing://models/test-gtp")
    assert error.code == -32602
    assert "unknown model 'test-gtp'; close matches: test-gpt" in error.message
    assert error.data == {"uri": "pricing://models/test-gtp"}


async def test_unknown_provider_resource_lists_the_providers(test_server: MCPServer) -> None:
    error = await read_error(test_server, "pricing://providers/nope")
    assert error.code == -32602
    assert "unknown provider 'nope'; allowed: openai, anthropic, google, mistral, deepseek, xai" in error.message


async def test_server_describes_itself(real_server: MCPServer) -> None:
    async with Client(real_server) as client:
        instructions = client.instructions
        info = client.server_info
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert instructions is not None
    assert instructions.startswith("costhawk answers questions about LLM API cost")
    assert "estimate_prompt" in instructions and "pricing://models" in instructions
    assert info is not None and (info.name, info.version) == ("costhawk", "0.1.0")
    assert {"estimate_prompt", "lookup_pricing"} <= set(tools)
    for name in ("estimate_prompt", "lookup_pricing"):
        tool = tools[name]
        assert tool.description
        assert tool.output_schema is not None and tool.output_schema["type"] == "object"
        assert tool.annotations is not None and tool.annotations.read_only_hint is True
    estimate_out = tools["estimate_prompt"].output_schema
    assert estimate_out is not None
    assert {"total_cost_usd", "comparisons", "cheapest_model", "token_count_method"} <= set(estimate_out["properties"])
    estimate_in = tools["estimate_prompt"].input_schema
    assert estimate_in["required"] == ["model"]
    assert estimate_in["properties"]["expected_output_tokens"]["minimum"] == 0
    lookup_out = tools["lookup_pricing"].output_schema
    assert lookup_out is not None and set(lookup_out["properties"]) >= ISSUE_FIELDS


async def test_legacy_handshake_clients_see_the_same_resources(test_server: MCPServer) -> None:
    async with Client(test_server, mode="legacy") as client:
        assert client.protocol_version == "2025-11-25"
        assert client.instructions is not None
        result = await client.read_resource("pricing://models/openai/test-gpt")
    assert json.loads(result.contents[0].text)["model"] == "test-gpt"  # type: ignore[union-attr]
