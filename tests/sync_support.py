"""Helpers shared by the sync and reconciliation tests: the fake provider server, a hand-worked data
set, settings pointing at the fake, and tool calls through the protocol."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from mcp.client import Client

from costhawk_mcp.config import Settings
from costhawk_mcp.pricing.catalog import load_catalog
from costhawk_mcp.server.build import build_server
from costhawk_mcp.store.db import Database
from costhawk_mcp.store.store import Store
from fake_providers import AnthropicUsage, CostAdjustment, FakeProviders, OpenAIUsage

D = Decimal
DAY1 = datetime(2026, 11, 10)
DAY2 = datetime(2026, 11, 11)
SINCE = "2026-11-10"
UNTIL = "2026-11-12"


@contextmanager
def running_fake() -> Iterator[FakeProviders]:
    """The fake APIs on an ephemeral 127.0.0.1 port, stopped afterwards."""
    fake = FakeProviders().start()
    try:
        yield fake
    finally:
        fake.stop()


def fake_settings(fake: FakeProviders, *, memory: bool = False, **env: str) -> Settings:
    """Settings of the isolated test home, with the fake's keys and base URLs (overridable).

    `memory`: the server keeps its database in memory (faster; nothing else can look at it).
    """
    return Settings.from_env({**os.environ, **fake.env(), **env}, db=":memory:" if memory else None)


def memory_store(settings: Settings) -> Store:
    """An in-memory store priced with the settings' catalog, for syncs run without the server."""
    return Store(Database(":memory:"), load_catalog(settings.user_catalog_path))


def open_store(settings: Settings) -> Store:
    """A second handle on the settings' database, for checking what a sync stored."""
    return Store(Database(settings.db_path), load_catalog(settings.user_catalog_path))


def hand_worked(fake: FakeProviders) -> None:
    """Two days of usage whose costs are worked out by hand (test catalog prices, USD per million).

    OpenAI (input includes cached and cache-write tokens; cache writes bill at the input rate):
      r1 day1 09h test-gpt standard key_a/proj_a: 1,000,000 in (200,000 cached, 100,000 written), 100,000 out
         = 700,000 x 2 + 200,000 x 0.5 + 100,000 x 2 + 100,000 x 8 = 1.40 + 0.10 + 0.20 + 0.80 = $2.50
      r2 day1 10h test-gpt batch key_a/proj_a: 2,000,000 in x 1 + 500,000 out x 4 = 2.00 + 2.00 = $4.00
      r3 day1 11h test-gpt-2026-01-01 (alias) priority key_b/proj_a: 500,000 in (100,000 cached), 50,000 out
         = 400,000 x 4 + 100,000 x 1 + 50,000 x 16 = 1.60 + 0.10 + 0.80 = $2.50
      r4 day2 08h test-gpt-mini standard key_c/proj_b (inactive key, archived project):
         10,000,000 in (4,000,000 cached), 1,000,000 out = 6M x 0.2 + 4M x 0.05 + 1M x 0.8 = 1.20 + 0.20 + 0.80 = $2.20
      r5 day2 08h embeddings test-embed key_a/proj_a: 50,000,000 x 0.02 = $1.00
      images day2 dall-e-3 key_c/proj_b: 5 images (billed $0.20 by the provider; no token price)
      => key_a $7.50, key_b $2.50, key_c $2.20; OpenAI $12.20 (day1 $9.00, day2 $3.20)
    Anthropic (input = uncached + cache read + 5m writes + 1h writes):
      a1 day1 09h test-claude-20260101 standard apikey_a/wrkspc_a: 100,000 uncached, 1,000,000 read, 200,000 5m,
         100,000 1h, 50,000 out = 0.30 + 0.30 + 0.75 + 0.60 + 0.75 = $2.70 (1,400,000 input tokens)
      a2 day1 10h batch apikey_b/default workspace: 1,000,000 x 1.5 + 200,000 x 7.5 = 1.50 + 1.50 = $3.00
      a3 day2 12h standard, context 200k-1M, apikey_a/wrkspc_a: 300,000 x 6 + 10,000 x 22.5 = 1.80 + 0.225 = $2.025
      a4 day2 13h priority apikey_a/wrkspc_a: no priority price in the catalog, so standard:
         1,000,000 x 3 + 100,000 x 15 = 3.00 + 1.50 = $4.50 (absent from the cost report)
      => apikey_a $9.225, apikey_b $3.00; Anthropic $12.225 (day1 $5.70, day2 $6.525)
    """
    fake.openai = [
        OpenAIUsage(DAY1.replace(hour=9), "test-gpt", "proj_a", "key_a", input_tokens=1_000_000,
                    cached_tokens=200_000, cache_write_tokens=100_000, output_tokens=100_000, requests=10),
        OpenAIUsage(DAY1.replace(hour=10), "test-gpt", "proj_a", "key_a", batch=True, input_tokens=2_000_000,
                    output_tokens=500_000, requests=4),
        OpenAIUsage(DAY1.replace(hour=11), "test-gpt-2026-01-01", "proj_a", "key_b", service_tier="priority",
                    input_tokens=500_000, cached_tokens=100_000, output_tokens=50_000, requests=5),
        OpenAIUsage(DAY2.replace(hour=8), "test-gpt-mini", "proj_b", "key_c", input_tokens=10_000_000,
                    cached_tokens=4_000_000, output_tokens=1_000_000, requests=20),
        OpenAIUsage(DAY2.replace(hour=8), "test-embed", "proj_a", "key_a", kind="embeddings",
                    input_tokens=50_000_000, requests=100),
        OpenAIUsage(DAY2.replace(hour=9), "dall-e-3", "proj_b", "key_c", kind="images", units=5, requests=5,
                    size="1024x1024", source="image.generation"),
    ]  # fmt: skip
    fake.anthropic = [
        AnthropicUsage(DAY1.replace(hour=9), "test-claude-20260101", "apikey_a", "wrkspc_a", uncached=100_000,
                       cache_read=1_000_000, write_5m=200_000, write_1h=100_000, output=50_000),
        AnthropicUsage(DAY1.replace(hour=10), "test-claude-20260101", "apikey_b", None, "batch",
                       uncached=1_000_000, output=200_000),
        AnthropicUsage(DAY2.replace(hour=12), "test-claude-20260101", "apikey_a", "wrkspc_a",
                       context_window="200k-1M", uncached=300_000, output=10_000),
        AnthropicUsage(DAY2.replace(hour=13), "test-claude-20260101", "apikey_a", "wrkspc_a", "priority",
                       uncached=1_000_000, output=100_000),
    ]  # fmt: skip
    fake.data_changed()


def plant_discrepancies(fake: FakeProviders) -> None:
    """What reconciliation must find on top of `hand_worked`:

    * OpenAI day1 proj_a: $1.23 billed on a token line that no usage explains;
    * OpenAI day2 proj_b: test-mystery, a model the test catalog cannot price, 1,000,000 input
      tokens billed at $1/M = $1.00 (its usage has no computed cost);
    * Anthropic day2 wrkspc_a: $0.50 of code execution (a non-token charge).
    """
    fake.openai.append(
        OpenAIUsage(DAY2.replace(hour=10), "test-mystery", "proj_b", "key_c", input_tokens=1_000_000, requests=1)
    )
    fake.adjustments["openai"].append(
        CostAdjustment(
            DAY1, D("1.23"), project_id="proj_a", line_item="test-gpt-2026-01-01, input", quantity_unit="tokens"
        )
    )
    fake.adjustments["anthropic"].append(
        CostAdjustment(
            DAY2, D("0.50"), project_id="wrkspc_a", line_item="Code Execution Usage", cost_type="code_execution"
        )
    )
    fake.data_changed()


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool's structured result; fails the test with the error text if the call failed."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text  # type: ignore[union-attr]
    assert result.structured_content is not None
    return result.structured_content


def connect(settings: Settings) -> Client:
    """An in-memory MCP client session on a server built from `settings`."""
    return Client(build_server(settings))


def stored(store: Store, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Rows of a query on the store (to check exactly what a sync wrote)."""
    with store.reading() as conn:
        return [tuple(r) for r in conn.execute(sql, params or []).fetchall()]


def text_of(result: Any) -> str:
    """Everything a tool result carries, as one string."""
    return json.dumps(result.structured_content) + "".join(getattr(c, "text", "") for c in result.content)


def read_bytes(path: str | Path) -> bytes:
    """A file's bytes, plus its WAL if one is left."""
    data = Path(path).read_bytes()
    wal = Path(f"{path}.wal")
    return data + (wal.read_bytes() if wal.exists() else b"")
