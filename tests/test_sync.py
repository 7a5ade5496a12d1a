"""Provider sync against the fake OpenAI and Anthropic admin APIs over real HTTP on 127.0.0.1.

Money is checked against the hand-worked figures in `sync_support.hand_worked` (test catalog prices).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import duckdb
import httpx
import pytest

from costhawk_mcp.config import Settings
from costhawk_mcp.errors import ProviderAuthError, ProviderError, StoreBusy, StoreError
from costhawk_mcp.store.db import Database
from costhawk_mcp.store.sync_store import usage_rows
from costhawk_mcp.sync import anthropic, openai
from costhawk_mcp.sync.http import RetryPolicy
from costhawk_mcp.sync.runner import plan_window, raise_for_errors, run_sync
from fake_providers import ANTHROPIC_PRICES, MILLION, FakeProviders, Fault, OpenAIUsage, generate
from sync_support import (
    DAY1,
    DAY2,
    SINCE,
    UNTIL,
    call,
    connect,
    fake_settings,
    hand_worked,
    memory_store,
    open_store,
    read_bytes,
    running_fake,
    stored,
    text_of,
)

D = Decimal
PROVIDERS_DATA = Path(__file__).parent / "data" / "providers"
FAST = RetryPolicy(max_attempts=3, base_delay_s=0.01, max_delay_s=0.05)


@pytest.fixture
def fake() -> Any:
    with running_fake() as server:
        yield server


def _fixture(name: str) -> bytes:
    return (PROVIDERS_DATA / name).read_bytes()


# ---------------------------------------------------------------------------------- page parsing
def test_openai_usage_fixture_becomes_rows_with_all_prompt_tokens_and_its_dimensions() -> None:
    page = openai.parse_usage_page(
        "completions", "usage/completions", "1d", _fixture("openai_usage_completions_page1.json")
    )
    assert page.has_more and page.next_page == "page_AAAAAGg+V4AAAAAAaDvEgA=="
    rows = usage_rows([page.page])
    first = rows[0]
    # input_tokens already counts cached and cache-write tokens: 183,220 + 61,440 + 2,048 = 246,708
    assert (first.input_tokens, first.cached_input_tokens, first.cache_write_tokens) == (246_708, 61_440, 2_048)
    assert (first.api_key_id, first.project_id, first.model, first.requests) == (
        "key_OYRZfEkH5R9CNgtY",
        "proj_9XkQ2mLr7TbVwY3cN5hJ",
        "gpt-4o-2024-08-06",
        412,
    )
    assert first.tier == "standard" and first.extra is None
    realtime = rows[2]  # audio tokens are kept, since the catalog prices them as text
    assert json.loads(realtime.extra or "{}")["input_audio_tokens"] == 48_210
    assert len(page.page.buckets) == 2 and len({r.dims_key for r in rows[:3]}) == 3
    last = openai.parse_usage_page(
        "completions", "usage/completions", "1d", _fixture("openai_usage_completions_page2.json")
    )
    assert not last.has_more and last.page.buckets[1] == (datetime(2025, 6, 4), datetime(2025, 6, 5))
    assert [r for r in usage_rows([last.page]) if r.bucket_start == datetime(2025, 6, 4)] == []  # an empty bucket


def test_openai_kinds_without_token_prices_keep_their_metrics_in_extra() -> None:
    images = usage_rows(
        [openai.parse_usage_page("images", "usage/images", "1d", _fixture("openai_usage_images.json")).page]
    )
    assert images[0].input_tokens == images[0].output_tokens == 0 and images[0].requests is None
    assert json.loads(images[0].extra or "{}") == {
        "images": 14,
        "num_model_requests": 14,
        "size": "1024x1024",
        "source": "image.generation",
    }
    embeddings = openai.parse_usage_page(
        "embeddings", "usage/embeddings", "1d", _fixture("openai_usage_embeddings.json")
    )
    embedding = usage_rows([embeddings.page])[0]
    assert embedding.input_tokens == 2_291_034 and embedding.requests == 812


def test_openai_costs_are_exact_dollars_even_with_unknown_and_missing_fields() -> None:
    rows = openai.parse_cost_page(_fixture("openai_costs.json")).page.costs
    assert rows[3].line_item == "gpt-4o-mini-2024-07-18, input" and rows[3].amount_usd == D("0.1353171")
    # day 1: 0.4581 + 0.5231 + 0.0768 + 0.1353171 + 0.0893262 + 0.0232704 + 0.56 + 0.3 = 2.1659137
    # day 2: 0.42501 + 0.4912 + 0.1217895 + 0.0789012 = 1.1169007 (both as in the ungrouped fixture)
    assert sum((r.amount_usd for r in rows), D(0)) == D("3.2828144")  # exact: no float sum
    odd = openai.parse_cost_page(_fixture("openai_costs_observed_extra_fields.json")).page.costs
    assert odd[0].amount_usd == D("2.1808433034030754") and odd[0].api_key_id is None and odd[0].quantity is None


def test_anthropic_usage_normalises_input_to_all_prompt_tokens_with_both_cache_writes() -> None:
    page = anthropic.parse_usage_page("1d", _fixture("anthropic_usage_messages.json"))
    day2 = next(
        r
        for r in usage_rows([page.page])
        if r.bucket_start == datetime(2025, 6, 2) and r.model == "claude-sonnet-4-20250514"
    )
    # 1,622,904 uncached + 8,841,120 read + 98,304 (5m) + 20,480 (1h) = 10,582,808
    assert day2.input_tokens == 10_582_808
    assert (day2.cached_input_tokens, day2.cache_write_tokens, day2.cache_write_1h_tokens) == (
        8_841_120,
        98_304,
        20_480,
    )
    assert day2.requests is None and json.loads(day2.extra or "{}") == {"web_search_requests": 12}
    console = next(r for r in usage_rows([page.page]) if r.api_key_id is None)  # Workbench usage has no key id
    assert console.input_tokens == 12_040 and console.workspace_id is None


def test_anthropic_cost_cents_strings_become_exact_dollars() -> None:
    rows = anthropic.parse_cost_page(_fixture("anthropic_cost_report.json")).page.costs
    assert rows[0].amount_usd == D("5.53563")  # "553.563" cents
    web = next(r for r in rows if r.cost_type == "web_search")
    assert web.amount_usd == D("0.37") and web.model is None
    assert len({(r.bucket_start, r.dims_key) for r in rows}) == len(rows)


# ---------------------------------------------------------------------------------- sync through MCP
@pytest.mark.anyio
async def test_sync_stores_exact_costs_per_key_model_and_tier(fake: FakeProviders, test_catalog: Path) -> None:
    hand_worked(fake)
    settings = fake_settings(fake)
    async with connect(settings) as client:
        report = await call(client, "sync_usage", since=SINCE, until=UNTIL)
        assert report["complete"] and report["errors"] == [] and report["skipped"] == []
        keys = await call(client, "top_expensive_keys", start=SINCE, end=UNTIL)
    by_key = {(k["provider"], k["api_key_id"]): k for k in keys["keys"]}
    # key_a 2.50 + 4.00 + 1.00; key_b 2.50; key_c 2.20; apikey_a 2.70 + 2.025 + 4.50; apikey_b 3.00
    assert {k: D(str(v["cost_usd"])) for k, v in by_key.items()} == {
        ("openai", "key_a"): D("7.50"),
        ("openai", "key_b"): D("2.50"),
        ("openai", "key_c"): D("2.20"),
        ("anthropic", "apikey_a"): D("9.225"),
        ("anthropic", "apikey_b"): D("3.00"),
    }
    # names come from the keys endpoints: key_c is inactive in an archived project (owner_project_access=any)
    assert by_key[("openai", "key_c")]["key_name"] == "media batch"
    assert by_key[("anthropic", "apikey_b")]["key_name"] == "claude-batch"

    store = open_store(settings)
    rows = stored(
        store,
        "SELECT provider, api_key_id, model_id, tier, long_context, sum(input_tokens), sum(cost_usd) "
        "FROM usage_buckets WHERE input_tokens > 0 GROUP BY ALL ORDER BY ALL",
    )
    assert rows == [
        ("anthropic", "apikey_a", "test-claude", "priority", False, 1_000_000, D("4.5")),
        ("anthropic", "apikey_a", "test-claude", "standard", False, 1_400_000, D("2.7")),
        ("anthropic", "apikey_a", "test-claude", "standard", True, 300_000, D("2.025")),
        ("anthropic", "apikey_b", "test-claude", "batch", False, 1_000_000, D("3")),
        ("openai", "key_a", "test-embed", "standard", False, 50_000_000, D("1")),
        ("openai", "key_a", "test-gpt", "batch", False, 2_000_000, D("4")),
        ("openai", "key_a", "test-gpt", "standard", False, 1_000_000, D("2.5")),
        ("openai", "key_b", "test-gpt", "priority", False, 500_000, D("2.5")),
        ("openai", "key_c", "test-gpt-mini", "standard", False, 10_000_000, D("2.2")),
    ]
    cache = stored(
        store,
        "SELECT sum(cached_input_tokens), sum(cache_write_tokens), sum(cache_write_1h_tokens) FROM usage_buckets "
        "WHERE provider = 'anthropic'",
    )
    assert cache == [(1_000_000, 200_000, 100_000)]
    images = stored(store, "SELECT extra FROM usage_buckets WHERE endpoint = 'usage/images'")
    assert [json.loads(e[0])["images"] for e in images] == [5]
    # what the providers billed, exactly: OpenAI 12.20 + 0.20 of images; Anthropic 12.225 without priority's 4.50
    billed = stored(store, "SELECT provider, sum(amount_usd) FROM provider_costs GROUP BY ALL ORDER BY ALL")
    assert billed == [("anthropic", D("7.725")), ("openai", D("12.4"))]


@pytest.mark.anyio
async def test_repeated_and_overlapping_syncs_never_double_count(fake: FakeProviders, test_catalog: Path) -> None:
    hand_worked(fake)
    settings = fake_settings(fake)
    totals = "SELECT provider, count(*), sum(input_tokens), sum(cost_usd) FROM usage_buckets GROUP BY ALL ORDER BY ALL"
    async with connect(settings) as client:
        await call(client, "sync_usage", since=SINCE, until=UNTIL)
        first = stored(open_store(settings), totals)
        await call(client, "sync_usage", since="2026-11-11", until="2026-11-13")  # overlaps day 2
        await call(client, "sync_usage", since="2026-11-09T18:00:00Z", until="2026-11-11")  # overlaps day 1
        again = stored(open_store(settings), totals)
    assert again == first
    assert [(r[0], r[3]) for r in first] == [("anthropic", D("12.225")), ("openai", D("12.2"))]


@pytest.mark.anyio
async def test_a_resync_replaces_buckets_whose_usage_changed_or_vanished(
    fake: FakeProviders, test_catalog: Path
) -> None:
    hand_worked(fake)
    settings = fake_settings(fake, ANTHROPIC_ADMIN_KEY="")
    async with connect(settings) as client:
        await call(client, "sync_usage", provider="openai", since=SINCE, until=UNTIL)
        # the provider re-attributes day 1: key_b's usage is gone, key_a's batch usage doubled
        fake.openai = [r for r in fake.openai if r.api_key_id != "key_b"]
        fake.openai.append(OpenAIUsage(DAY1.replace(hour=10), "test-gpt", "proj_a", "key_a", batch=True,
                                       input_tokens=2_000_000, output_tokens=500_000, requests=4))  # fmt: skip
        fake.data_changed()
        report = await call(client, "sync_usage", since=SINCE, until=UNTIL)
    assert report["skipped"] == ["anthropic: ANTHROPIC_ADMIN_KEY is not set"]
    rows = stored(
        open_store(settings),
        "SELECT api_key_id, sum(cost_usd) FROM usage_buckets WHERE input_tokens > 0 GROUP BY ALL ORDER BY ALL",
    )
    assert rows == [("key_a", D("11.5")), ("key_c", D("2.2"))]  # 2.50 + 2 x 4.00 + 1.00; key_b gone


@pytest.mark.anyio
async def test_sync_reports_progress_to_the_client(fake: FakeProviders, test_catalog: Path) -> None:
    hand_worked(fake)
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        seen.append((done, total, message))

    async with connect(fake_settings(fake, memory=True)) as client:
        result = await client.call_tool("sync_usage", {"since": SINCE, "until": UNTIL}, progress_callback=on_progress)
        assert not result.is_error
        with anyio.fail_after(5):
            while not seen or seen[-1][2] != "done":
                await anyio.sleep(0.01)
    assert len(seen) >= 5
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)
    assert seen[-1][0] == seen[-1][1] > 0
    assert any("openai usage/completions: page 1 stored" in (m or "") for _, _, m in seen)


@pytest.mark.anyio
async def test_top_expensive_keys_uses_synced_buckets_instead_of_request_logs(
    fake: FakeProviders, test_catalog: Path
) -> None:
    hand_worked(fake)
    settings = fake_settings(fake, memory=True, ANTHROPIC_ADMIN_KEY="")
    async with connect(settings) as client:
        before = await call(client, "top_expensive_keys", start=SINCE, end=UNTIL, provider="openai")
        await call(client, "sync_usage", since=SINCE, until=UNTIL)
        after = await call(client, "top_expensive_keys", start=SINCE, end=UNTIL, provider="openai")
    assert before["keys"] == []
    assert [(k["key_name"], k["cost_usd"], k["requests"]) for k in after["keys"]] == [
        ("search-prod", 7.5, 114),  # 10 + 4 + 100 requests
        ("alice laptop", 2.5, 5),
        ("media batch", 2.2, 20),
    ]


# ---------------------------------------------------------------------------------- pagination and windows
@pytest.mark.anyio
async def test_pages_follow_next_page_with_every_other_parameter_unchanged(
    fake: FakeProviders, test_catalog: Path
) -> None:
    generate(fake, datetime(2026, 11, 1), 8 * 24, combos=3)  # 192 hourly buckets: two pages of at most 168
    settings = fake_settings(fake)
    store = open_store(settings)
    report = await run_sync(
        store, settings, since=datetime(2026, 11, 1), until=datetime(2026, 11, 9), bucket_width="1h"
    )
    assert report.complete
    for path in ("/openai/v1/organization/usage/completions", "/anthropic/v1/organizations/usage_report/messages"):
        queries = fake.requests_to(path)
        assert len(queries) == 2
        first, second = ({k: v for k, v in q.values.items() if k != "page"} for q in queries)
        assert first == second
        assert "page" not in queries[0].values and queries[1].one("page") is not None
        assert first["limit"] == ["168"] and first["bucket_width"] == ["1h"]
    assert fake.requests_to("/usage/completions")[0].list("group_by") == [
        "project_id",
        "api_key_id",
        "model",
        "batch",
        "service_tier",
    ]
    hours = stored(store, "SELECT count(DISTINCT bucket_start) FROM usage_buckets WHERE endpoint = 'usage/completions'")
    assert hours == [(8 * 24 - 7,)]  # every hour but the seven the generator leaves empty


@pytest.mark.anyio
async def test_a_repeated_cursor_is_an_error_not_the_end(fake: FakeProviders, test_catalog: Path) -> None:
    generate(fake, datetime(2026, 11, 1), 24, combos=2)
    fake.repeat_cursor = True
    settings = fake_settings(fake, ANTHROPIC_ADMIN_KEY="")
    report = await run_sync(memory_store(settings), settings, since=datetime(2026, 11, 1), until=datetime(2026, 11, 2))
    assert not report.complete
    assert any("/organization/usage/completions: the API repeated the page cursor" in e for e in report.errors)
    with pytest.raises(ProviderError, match="run sync again"):
        raise_for_errors(report)


@pytest.mark.anyio
async def test_default_window_continues_from_the_last_sync_with_a_trailing_refetch(
    fake: FakeProviders, test_catalog: Path
) -> None:
    now = fake.now
    generate(fake, (now - timedelta(days=4)).replace(hour=0, minute=0, second=0, microsecond=0), 72, combos=2)
    settings = fake_settings(fake, memory=True, ANTHROPIC_ADMIN_KEY="")
    async with connect(settings) as client:
        await call(client, "sync_usage")
        await call(client, "sync_usage")
    starts = [int(q.one("start_time") or 0) for q in fake.requests_to("/usage/completions")]
    first_day = (now - timedelta(days=30)).replace(hour=0, minute=0, second=0, microsecond=0)
    trailing = (now - timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
    epoch = datetime(1970, 1, 1)
    assert starts == [int((first_day - epoch).total_seconds()), int((trailing - epoch).total_seconds())]
    assert all(q.one("end_time") is None for q in fake.requests_to("/usage/completions"))  # up to now


def test_sync_windows_are_utc_aligned_and_resume_before_the_last_synced_point() -> None:
    hourly = openai.OpenAIAdapter().endpoints("1h")[0]
    costs = openai.OpenAIAdapter().endpoints("1h")[-1]
    now = datetime(2026, 11, 27, 15, 42)
    since, until = datetime(2026, 11, 1, 7, 30), datetime(2026, 11, 2, 7, 30)
    assert plan_window(hourly, since=since, until=until, covered_to=None, now=now) == (
        datetime(2026, 11, 1, 7),
        datetime(2026, 11, 2, 8),
    )
    assert plan_window(costs, since=since, until=until, covered_to=None, now=now) == (
        datetime(2026, 11, 1),
        datetime(2026, 11, 3),
    )
    # default: three days before the last synced point, or 30 days back; no end means up to now
    last = datetime(2026, 11, 27, 12, 5)
    assert plan_window(hourly, since=None, until=None, covered_to=last, now=now) == (datetime(2026, 11, 24), None)
    assert plan_window(hourly, since=None, until=None, covered_to=None, now=now) == (datetime(2026, 10, 28), None)
    # an explicit end before the last synced point means the 30 days before that end
    assert plan_window(costs, since=None, until=datetime(2026, 10, 1), covered_to=last, now=now) == (
        datetime(2026, 9, 1),
        datetime(2026, 10, 1),
    )


# ---------------------------------------------------------------------------------- faults
@pytest.mark.anyio
async def test_429_retry_after_is_honoured_then_the_sync_completes(fake: FakeProviders, test_catalog: Path) -> None:
    hand_worked(fake)
    fake.faults = [
        Fault("/usage/completions", 429, {"retry-after": "2"}),
        Fault("/usage_report/messages", 429, {"retry-after-ms": "150", "retry-after": "9"}),
    ]
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    settings = fake_settings(fake)
    store = memory_store(settings)
    report = await run_sync(store, settings, since=DAY1, until=DAY2 + timedelta(days=1), policy=FAST, sleep=record)
    assert report.complete
    assert sorted(waits) == [0.15, 2.0]  # retry-after-ms wins over retry-after
    assert len(fake.requests_to("/usage/completions")) == 2
    assert stored(store, "SELECT provider, sum(cost_usd) FROM usage_buckets GROUP BY ALL ORDER BY ALL") == [
        ("anthropic", D("12.225")),
        ("openai", D("12.2")),
    ]


@pytest.mark.anyio
async def test_529_500_and_dropped_connections_are_retried_with_backoff(
    fake: FakeProviders, test_catalog: Path
) -> None:
    hand_worked(fake)
    fake.faults = [
        Fault("/usage_report/messages", 529),
        Fault("/cost_report", 500),
        Fault("/organization/costs", 0, drop_connection=True),
    ]
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    settings = fake_settings(fake)
    report = await run_sync(
        memory_store(settings), settings, since=DAY1, until=DAY2 + timedelta(days=1), policy=FAST, sleep=record
    )
    assert report.complete and len(waits) == 3
    assert all(0.0075 <= w <= 0.01 for w in waits)  # first backoff step, minus up to 25 % jitter


@pytest.mark.anyio
async def test_gives_up_after_bounded_500s_naming_endpoint_and_status(fake: FakeProviders, test_catalog: Path) -> None:
    hand_worked(fake)
    fake.faults = [Fault("/organization/costs", 500, times=100)]

    async def instant(seconds: float) -> None:
        return None

    settings = fake_settings(fake, ANTHROPIC_ADMIN_KEY="")
    store = memory_store(settings)
    report = await run_sync(store, settings, since=DAY1, until=DAY2 + timedelta(days=1), policy=FAST, sleep=instant)
    assert report.errors == ["OpenAI /organization/costs failed with HTTP 500: injected 500 after 3 attempts"]
    assert len(fake.requests_to("/organization/costs")) == 3
    with pytest.raises(ProviderError, match=r"/organization/costs failed with HTTP 500") as caught:
        raise_for_errors(report)
    assert not isinstance(caught.value, ProviderAuthError)
    # everything else was stored, and the failure is recorded for the sync-status resource
    assert stored(store, "SELECT sum(cost_usd) FROM usage_buckets") == [(D("12.2"),)]
    assert stored(store, "SELECT last_error FROM sync_state WHERE endpoint = 'costs'") == [
        ("OpenAI /organization/costs failed with HTTP 500: injected 500 after 3 attempts",)
    ]


@pytest.mark.anyio
async def test_a_rejected_key_fails_at_once_naming_its_variable(fake: FakeProviders, test_catalog: Path) -> None:
    hand_worked(fake)
    wrong = "sk-admin-wrong-key-for-this-org-000111222"
    settings = fake_settings(fake, OPENAI_ADMIN_KEY=wrong)
    async with connect(settings) as client:
        result = await client.call_tool("sync_usage", {"since": SINCE, "until": UNTIL})
        status = await client.read_resource("costhawk://sync-status")
    assert result.is_error
    message = result.content[0].text  # type: ignore[union-attr]
    assert "OpenAI rejected the admin key in OPENAI_ADMIN_KEY (HTTP 401" in message
    assert wrong not in message and "[redacted]" in message  # the fake echoes the key; it is scrubbed
    paths = [p for p, _ in fake.log if p.startswith("/openai")]
    assert len(paths) == len(set(paths))  # nothing retried
    # Anthropic's key was fine: its data is in, and the status names the failing variable, not the key
    status_text = status.contents[0].text  # type: ignore[union-attr]
    openai_status = next(p for p in json.loads(status_text)["providers"] if p["provider"] == "openai")
    assert "OPENAI_ADMIN_KEY" in openai_status["last_error"] and wrong not in status_text
    assert stored(open_store(settings), "SELECT provider, sum(cost_usd) FROM usage_buckets GROUP BY ALL") == [
        ("anthropic", D("12.225"))
    ]


@pytest.mark.anyio
async def test_without_any_key_the_message_names_both_variables(test_catalog: Path) -> None:
    async with connect(Settings.from_env()) as client:
        result = await client.call_tool("sync_usage", {})
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "OPENAI_ADMIN_KEY" in text and "ANTHROPIC_ADMIN_KEY" in text


@pytest.mark.anyio
async def test_unknown_fields_are_ignored_and_names_are_paginated(fake: FakeProviders, test_catalog: Path) -> None:
    hand_worked(fake)
    fake.extra_fields = True
    fake.names_page_size = 1
    settings = fake_settings(fake)
    store = memory_store(settings)
    report = await run_sync(store, settings, since=DAY1, until=DAY2 + timedelta(days=1))
    assert report.complete
    assert [(p.provider, p.api_keys, p.projects) for p in report.providers] == [("openai", 3, 2), ("anthropic", 2, 2)]
    assert len(fake.requests_to("/organization/projects/proj_a/api_keys")) == 2  # one key per page
    assert stored(store, "SELECT sum(cost_usd) FROM usage_buckets") == [(D("24.425"),)]


def test_fake_accepts_both_array_encodings_and_enforces_limits(fake: FakeProviders) -> None:
    hand_worked(fake)
    headers = {"Authorization": f"Bearer {fake.openai_key}"}
    url = f"{fake.openai_url}/organization/usage/completions"
    base = "start_time=1794268800&end_time=1794441600&bucket_width=1d"  # 2026-11-10 to 2026-11-12
    brackets = httpx.get(f"{url}?{base}&group_by[]=api_key_id&group_by[]=model", headers=headers).json()
    repeated = httpx.get(f"{url}?{base}&group_by=api_key_id&group_by=model", headers=headers).json()
    # day 1 by key and model: key_a/test-gpt (standard + batch) and key_b/test-gpt-2026-01-01
    assert brackets == repeated and len(brackets["data"][0]["results"]) == 2
    assert brackets["data"][0]["results"][0]["project_id"] is None  # not grouped: null
    too_many = httpx.get(f"{url}?{base}&limit=32", headers=headers)
    assert too_many.status_code == 400 and "limit" in too_many.json()["error"]["message"]


# ---------------------------------------------------------------------------------- secrets
@pytest.mark.anyio
async def test_no_key_material_reaches_any_output_log_result_or_the_database(
    fake: FakeProviders, test_catalog: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hand_worked(fake)
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "costhawk_mcp", "mcp"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    secrets = [fake.openai_key, fake.anthropic_key]
    db = Path(os.environ["COSTHAWK_HOME"]) / "costhawk.duckdb"
    env = {**os.environ, **fake.env(), "COSTHAWK_LOG_LEVEL": "DEBUG"}
    cli = subprocess.run(
        [sys.executable, "-m", "costhawk_mcp", "sync", "--since", SINCE, "--until", UNTIL, "--db", str(db), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    assert "HTTP Request: GET" in cli.stderr  # httpx's own DEBUG/INFO logging was on
    wrong = "sk-ant-admin01-a-wrong-key-that-the-fake-echoes"
    leaky = subprocess.run(
        [sys.executable, "-m", "costhawk_mcp", "sync", "--provider", "anthropic", "--db", str(db)],
        env={**env, "ANTHROPIC_ADMIN_KEY": wrong},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert leaky.returncode == 1 and "ANTHROPIC_ADMIN_KEY" in leaky.stderr
    texts = [cli.stdout, cli.stderr, leaky.stdout, leaky.stderr]
    async with connect(fake_settings(fake)) as client:
        for tool, args in (
            ("sync_usage", {"since": SINCE, "until": UNTIL}),
            ("reconcile", {"start": SINCE, "end": UNTIL}),
            ("top_expensive_keys", {"start": SINCE, "end": UNTIL}),
        ):
            texts.append(text_of(await client.call_tool(tool, args)))
        texts.append((await client.read_resource("costhawk://sync-status")).contents[0].text)  # type: ignore[union-attr]
    async with connect(fake_settings(fake, OPENAI_ADMIN_KEY="sk-admin-echoed-back-by-the-fake-000")) as client:
        texts.append(text_of(await client.call_tool("sync_usage", {"since": SINCE, "until": UNTIL})))
    texts.append("\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records))
    assert any("HTTP Request: GET" in t for t in texts)  # the in-process httpx logs were captured too
    everything = "\n".join(texts)
    for secret in [*secrets, wrong, "sk-admin-echoed-back-by-the-fake-000"]:
        assert secret not in everything
        assert secret.encode() not in read_bytes(db)


# ---------------------------------------------------------------------------------- kill -9
def _anthropic_expected(fake: FakeProviders, start: datetime, end: datetime) -> Decimal:
    """What the catalog prices the generated Anthropic usage at (priority has no price: standard)."""
    total = Decimal(0)
    for r in fake.anthropic:
        if start <= r.hour < end:
            tier = "standard" if r.service_tier == "priority" else r.service_tier
            prices = ANTHROPIC_PRICES[r.base_model][(tier, r.context_window == "200k-1M")]
            counts = (r.uncached, r.cache_read, r.write_5m, r.write_1h, r.output)
            total += sum((c * p for c, p in zip(counts, prices, strict=True)), Decimal(0)) / MILLION
    return total


def _count_rows(db: Path) -> int:
    """Rows synced so far, read the way costhawk reads (yielding to a waiting writer)."""
    if not db.exists():
        return 0
    try:
        with Database(str(db), lock_timeout=0.2).read() as conn:
            return int(conn.execute("SELECT count(*) FROM usage_buckets").fetchone()[0])
    except StoreBusy:
        return -1  # the sync holds the write lock right now
    except (StoreError, duckdb.Error):
        return 0  # not migrated yet


def test_a_sync_killed_with_sigkill_midway_completes_exactly_on_the_next_run(
    fake: FakeProviders, test_catalog: Path
) -> None:
    start, end = datetime(2026, 11, 1), datetime(2026, 11, 11)
    generate(fake, start, 10 * 24, combos=12)
    fake.slow_after_pages = 1  # per endpoint: every first page is quick, every second page hangs
    fake.slow_seconds = 60
    db = Path(os.environ["COSTHAWK_HOME"]) / "killed.duckdb"
    command = [sys.executable, "-m", "costhawk_mcp", "sync", "--since", "2026-11-01", "--until", "2026-11-11",
               "--bucket", "1h", "--db", str(db)]  # fmt: skip
    env = {**os.environ, **fake.env()}
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while _count_rows(db) <= 0:
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, ("the sync never got going", fake.pages_served, _count_rows(db))
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate(timeout=10)
    assert child.returncode == -signal.SIGKILL
    assert _count_rows(db) > 0
    # It died mid-sync: 240 hourly buckets are 2 pages for each of 11 usage endpoints, plus 2 cost pages,
    # and no second page was ever answered.
    assert fake.pages_served < 24

    fake.slow_after_pages = None
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    conn = duckdb.connect(str(db), read_only=True)
    try:
        got = {
            r[0]: (r[1], r[2], r[3])
            for r in conn.execute(
                "SELECT provider, sum(input_tokens), sum(output_tokens), sum(cost_usd) FROM usage_buckets GROUP BY ALL"
            ).fetchall()
        }
        partial = conn.execute(
            "SELECT count(*) FROM sync_state WHERE endpoint <> 'api_keys' AND covered_to < ?", [end]
        ).fetchone()[0]
    finally:
        conn.close()
    openai_in = sum(r.input_tokens for r in fake.openai)
    openai_out = sum(r.output_tokens for r in fake.openai)
    anthropic_in = sum(r.uncached + r.cache_read + r.write_5m + r.write_1h for r in fake.anthropic)
    anthropic_out = sum(r.output for r in fake.anthropic)
    assert got["openai"] == (openai_in, openai_out, fake.expected_cost("openai", start, end))
    assert got["anthropic"] == (anthropic_in, anthropic_out, _anthropic_expected(fake, start, end))
    assert partial == 0
