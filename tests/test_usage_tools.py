"""top_expensive_keys, cost_per_query and model_swap_savings, through the in-memory MCP client.

Prices come from tests/data/test_pricing.json (USD per million tokens), from 2026-06-01 on:
test-gpt 2 in / 0.5 cached / 8 out (batch 1 / 4); test-gpt-mini 0.2 / 0.05 / 0.8 (batch 0.1 / 0.4);
test-claude 3 / 0.3 / 15, above 200,000 input tokens 6 / 0.6 / 22.5; test-gemini 1.25 / 0.125 / 10,
above 200,000: 2.5 / 0.25 / 15; test-legacy 30 / 60, no cache or batch price, 8,000-token window.
Every expected figure is worked out by hand in a comment.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from client_support import call, connect, insert
from costhawk_mcp.config import Settings
from costhawk_mcp.server.app import App
from costhawk_mcp.store.coverage import source_use, unpriced
from costhawk_mcp.store.facts import FactFilter
from costhawk_mcp.store.store import RequestRow
from usage_support import Bucket, insert_buckets, req

D = Decimal
WEEK = {"start": "2026-11-01", "end": "2026-11-08"}


def at(day: int, hour: int = 12, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute)


@pytest.fixture
def priced(test_catalog: Path, settings: Settings) -> Settings:
    """Settings whose server and store use the round test prices."""
    return settings


# ------------------------------------------------------------------------------------ top keys
def key_rows() -> list[RequestRow]:
    return [
        # key-c (openai, test-gpt-mini): 3 × (100,000 in × 0.2 + 10,000 out × 0.8)/1M = 3 × 0.028 = 0.084.
        # The first sits exactly on the window's start (inclusive), the last just before its end.
        *(
            req(
                ts,
                "test-gpt-mini",
                input_tokens=100_000,
                output=10_000,
                api_key_id="key-c",
                key_name="mini",
                project="web",
            )
            for ts in (datetime(2026, 11, 1), at(3), datetime(2026, 11, 7, 23, 59, 59))
        ),
        # ...and one on the end instant itself (exclusive): in no window here.
        req(datetime(2026, 11, 8), "test-gpt-mini", input_tokens=100_000, output=10_000, api_key_id="key-c"),
        # key-b (anthropic): 10,000 in × 3 + 1,000 out × 15 = (30,000 + 15,000)/1M = 0.045.
        req(
            at(2),
            "test-claude",
            input_tokens=10_000,
            output=1_000,
            api_key_id="key-b",
            key_name="batch-jobs",
            project="data",
        ),
        # key-a (openai): 2 × (1,000 in × 2 + 500 out × 8)/1M = 2 × 0.006 = 0.012, plus one unpriced request.
        *(
            req(at(d), input_tokens=1_000, output=500, api_key_id="key-a", key_name="backend", project="web")
            for d in (4, 5)
        ),
        req(
            at(5), "mystery-model", input_tokens=1_000, output=500, api_key_id="key-a", project="web", provider="openai"
        ),
        # key-d: only an unpriced model, so its cost is unknown (null), not zero.
        req(at(6), "mystery-model", input_tokens=50, api_key_id="key-d", provider="openai"),
        # no key id: 5,000 in × 2 / 1M = 0.01 (unattributed).
        req(at(6), input_tokens=5_000),
        # previous week (2026-10-25 .. 11-01):
        # key-c 0.028 (one mini request as above); key-b 20,000 × 3 + 2,000 × 15 = (60,000 + 30,000)/1M = 0.09;
        # key-e 0.006 (only then, so not listed now). Previous total 0.028 + 0.09 + 0.006 = 0.124.
        req(at(27, month=10), "test-gpt-mini", input_tokens=100_000, output=10_000, api_key_id="key-c"),
        req(at(28, month=10), "test-claude", input_tokens=20_000, output=2_000, api_key_id="key-b"),
        req(at(29, month=10), input_tokens=1_000, output=500, api_key_id="key-e"),
        # two weeks before: in neither window.
        req(at(20, month=10), "test-claude", input_tokens=1_000_000, api_key_id="key-b"),
    ]


@pytest.mark.anyio
async def test_top_keys_are_ordered_by_cost_with_shares_and_change(priced: Settings) -> None:
    insert(priced, key_rows())
    r = await call(priced, "top_expensive_keys", WEEK)

    assert r["period"] == {"start": "2026-11-01T00:00:00", "end": "2026-11-08T00:00:00", "days": 7}
    # total = 0.084 + 0.045 + 0.012 + 0.01 (no key) = 0.151
    assert r["total_cost_usd"] == D("0.151")
    assert r["previous_period_total_cost_usd"] == D("0.124")
    assert [k["api_key_id"] for k in r["keys"]] == ["key-c", "key-b", "key-a", "key-d"]
    c, b, a, d = r["keys"]
    # shares: 0.084/0.151 = 55.629 %, 0.045/0.151 = 29.801 %, 0.012/0.151 = 7.947 %
    assert (c["cost_usd"], c["share_pct"]) == (D("0.084"), D("55.63"))
    assert (b["cost_usd"], b["share_pct"]) == (D("0.045"), D("29.80"))
    assert (a["cost_usd"], a["share_pct"]) == (D("0.012"), D("7.95"))
    # change: key-c (0.084 − 0.028)/0.028 = +200 %; key-b (0.045 − 0.09)/0.09 = −50 %; key-a had nothing before
    assert (c["previous_period_cost_usd"], c["change_pct"]) == (D("0.028"), D("200.0"))
    assert (b["previous_period_cost_usd"], b["change_pct"]) == (D("0.09"), D("-50.0"))
    assert (a["previous_period_cost_usd"], a["change_pct"]) == (None, None)
    assert c == c | {
        "key_name": "mini",
        "provider": "openai",
        "project": "web",
        "requests": 3,
        "input_tokens": 300_000,
        "output_tokens": 30_000,
        "top_model": "test-gpt-mini",
    }
    # key-a: 3 requests, one unpriced; its top model is the priced one
    assert a == a | {
        "key_name": "backend",
        "requests": 3,
        "unpriced_requests": 1,
        "top_model": "test-gpt",
        "input_tokens": 3_000,
        "output_tokens": 1_500,
    }
    assert b == b | {"key_name": "batch-jobs", "provider": "anthropic", "project": "data", "top_model": "test-claude"}
    # key-d could not be priced at all: unknown, not zero, and listed last
    assert d == d | {
        "cost_usd": None,
        "share_pct": None,
        "requests": 1,
        "unpriced_requests": 1,
        "top_model": "mystery-model",
    }
    assert r["key_count"] == 4
    # spend without a key is its own figure, not a row: 0.01 / 0.151 = 6.62 %
    assert (r["unattributed_cost_usd"], r["unattributed_requests"], r["unattributed_share_pct"]) == (
        D("0.01"),
        1,
        D("6.62"),
    )
    assert (r["unpriced_requests"], r["unpriced_models"]) == (2, ["mystery-model"])
    # requests: 3 (c) + 1 (b) + 3 (a) + 1 (d) + 1 (no key) = 9
    assert r["total_requests"] == 9


@pytest.mark.anyio
async def test_top_keys_limit_and_provider_filter(priced: Settings) -> None:
    insert(priced, key_rows())
    async with connect(priced) as tools:
        r = await tools.call("top_expensive_keys", {**WEEK, "limit": 2})
        assert [k["api_key_id"] for k in r["keys"]] == ["key-c", "key-b"]
        assert (r["key_count"], r["total_cost_usd"]) == (4, D("0.151"))

        # 'claude' is an alias of anthropic: only key-b, 0.045 of 0.045; previous week 0.09
        r = await tools.call("top_expensive_keys", {**WEEK, "provider": "claude"})
        assert r["provider"] == "anthropic"
        assert [(k["api_key_id"], k["share_pct"]) for k in r["keys"]] == [("key-b", D("100.0"))]
        assert (r["total_cost_usd"], r["previous_period_total_cost_usd"]) == (D("0.045"), D("0.09"))
        assert r["unpriced_requests"] == 0
        assert [(s["source"], s["provider"], s["days"], s["requests"]) for s in r["data_sources"]] == [
            ("request_logs", "anthropic", 1, 1)
        ]

        r = await tools.call("top_expensive_keys", {**WEEK, "project": "data"})
        assert [k["api_key_id"] for k in r["keys"]] == ["key-b"]


@pytest.mark.anyio
async def test_data_sources_and_unpriced_match_the_shared_coverage_queries(priced: Settings) -> None:
    insert(priced, key_rows())
    r = await call(priced, "top_expensive_keys", WEEK)
    window = FactFilter(start=datetime(2026, 11, 1), end=datetime(2026, 11, 8))
    with App(priced).store.reading() as conn:
        expected_sources = source_use(conn, window)
        expected_unpriced = unpriced(conn, window)
    got = [
        (s["source"], s["provider"], s["days"], s["first_day"], s["last_day"], s["requests"]) for s in r["data_sources"]
    ]
    assert got == [
        (u.source, u.provider, u.days, u.first_day.isoformat(), u.last_day.isoformat(), u.requests)
        for u in expected_sources
    ]
    # openai: key-c on 11-01, 11-03, 11-07, key-a on 11-04 and 11-05 (x2), key-d and no-key on 11-06 -> 6 days, 8
    assert got == [
        ("request_logs", "anthropic", 1, "2026-11-02", "2026-11-02", 1),
        ("request_logs", "openai", 6, "2026-11-01", "2026-11-07", 8),
    ]
    assert (r["unpriced_requests"], r["unpriced_models"]) == (expected_unpriced.requests, expected_unpriced.models)


# ----------------------------------------------------------------------- synced provider buckets
@pytest.mark.anyio
async def test_synced_buckets_replace_request_logs_of_their_provider_day(priced: Settings) -> None:
    insert(
        priced,
        [
            # openai on 11-03: two logged requests of 0.006 each, which the synced bucket below replaces
            req(at(3, 9), input_tokens=1_000, output=500, api_key_id="key-a"),
            req(at(3, 10), input_tokens=1_000, output=500, api_key_id="key-a"),
            # openai on 11-04: no bucket, so the log counts: (1,000 × 2 + 500 × 8)/1M = 0.006
            req(at(4), input_tokens=1_000, output=500, api_key_id="key-a"),
            # anthropic on 11-03: buckets are openai's only, so the log counts: 0.045
            req(at(3), "test-claude", input_tokens=10_000, output=1_000, api_key_id="key-b"),
        ],
    )
    # the bucket: 10 requests, (100,000 in × 2 + 10,000 out × 8)/1M = 0.2 + 0.08 = 0.28
    insert_buckets(priced, [Bucket("openai", datetime(2026, 11, 3), "test-gpt", 10, 100_000, 10_000, "key-a")])

    async with connect(priced) as tools:
        r = await tools.call("top_expensive_keys", WEEK)
        # key-a = 0.28 (bucket) + 0.006 (11-04 log) = 0.286, never + 0.012 from the replaced logs
        assert [(k["api_key_id"], k["cost_usd"], k["requests"]) for k in r["keys"]] == [
            ("key-a", D("0.286"), 11),
            ("key-b", D("0.045"), 1),
        ]
        assert r["total_cost_usd"] == D("0.331")
        assert [(s["source"], s["provider"], s["days"], s["first_day"], s["requests"]) for s in r["data_sources"]] == [
            ("provider_usage", "openai", 1, "2026-11-03", 10),
            ("request_logs", "anthropic", 1, "2026-11-03", 1),
            ("request_logs", "openai", 1, "2026-11-04", 1),
        ]

        # the swap re-prices the same facts: bucket 100,000 × 0.2 + 10,000 × 0.8 = 0.028, log 1,000 × 0.2 + 500 × 0.8
        # = 0.0006; projected 0.0286 against 0.286 -> savings 0.2574
        s = await tools.call("model_swap_savings", {"from_model": "test-gpt", "to_model": "test-gpt-mini", **WEEK})
        assert (s["requests"], s["current_cost_usd"], s["projected_cost_usd"], s["savings_usd"]) == (
            11,
            D("0.286"),
            D("0.0286"),
            D("0.2574"),
        )
        assert any(c.startswith("10 requests come from provider usage buckets") for c in s["caveats"])

        # queries exist only in request logs: all four logged requests count, the bucket does not
        q = await tools.call("cost_per_query", WEEK)
        # 0.006 × 3 + 0.045 = 0.063
        assert (q["queries"], q["single_call_queries_without_id"], q["total_cost_usd"]) == (4, 4, D("0.063"))
        assert {s["source"] for s in q["data_sources"]} == {"request_logs"}


# ------------------------------------------------------------------------------- cost per query
def query_rows() -> list[RequestRow]:
    """20 priced queries costing 0.002 × k (k = 1..20), one query with an unpriced call.

    Query k: test-gpt, k × 1,000 input tokens in all, so (k × 1,000 × 2)/1M = 0.002 × k. Even k: two
    calls of k × 500; odd k: one call; k = 1 and 3 carry no query id. k = 20 is test-gpt 10,000 in
    (0.02) + test-gpt-mini 100,000 in (100,000 × 0.2 / 1M = 0.02). Features: k ≤ 10 chat, else search.
    """
    rows = []
    for k in range(1, 20):
        qid = None if k in (1, 3) else f"q-{k:02d}"
        feature = "chat" if k <= 10 else "search"
        parts = [k * 500, k * 500] if k % 2 == 0 else [k * 1_000]
        rows += [
            req(at(3, 8, k + i), input_tokens=n, query_id=qid, feature=feature, api_key_id="key-a")
            for i, n in enumerate(parts)
        ]
    rows += [
        req(
            at(3, 9),
            input_tokens=10_000,
            query_id="q-20",
            feature="search",
            latency_ms=800.0,
            status="ok",
            request_id="q20-a",
        ),
        req(
            at(3, 9, 1),
            "test-gpt-mini",
            input_tokens=100_000,
            query_id="q-20",
            latency_ms=1200.0,
            status="error",
            request_id="q20-b",
        ),
        # q-21: a priced call (1,000 × 2 / 1M = 0.002) and an unpriced one: cost unknown, left out
        req(at(3, 10), input_tokens=1_000, query_id="q-21", feature="chat"),
        req(at(3, 10, 1), "mystery-model", input_tokens=1_000, query_id="q-21", provider="openai"),
    ]
    return rows


@pytest.mark.anyio
async def test_cost_per_query_percentiles_are_nearest_rank_over_priced_queries(priced: Settings) -> None:
    insert(priced, query_rows())
    r = await call(priced, "cost_per_query", {**WEEK, "limit": 3})
    # 20 priced + q-21 = 21 queries; calls: 10 even k × 2 (k = 2..20) + 10 odd × 1 + q-21's 2 = 32
    assert (r["queries"], r["priced_queries"], r["unpriced_queries"]) == (21, 20, 1)
    assert (r["calls"], r["calls_outside_window"]) == (32, 0)
    assert r["single_call_queries_without_id"] == 2
    # total 0.002 × (1 + ... + 20) = 0.002 × 210 = 0.42; mean 0.42 / 20 = 0.021
    assert (r["total_cost_usd"], r["mean_cost_usd"]) == (D("0.42"), D("0.021"))
    # nearest rank over 20 sorted costs: p50 = 10th (0.020), p95 = 19th (0.038), p99 = 20th (0.040)
    # (linear interpolation would give 0.021, 0.0381 and 0.03962)
    assert (r["p50_cost_usd"], r["p95_cost_usd"], r["p99_cost_usd"]) == (D("0.02"), D("0.038"), D("0.04"))
    # 32 calls / 21 queries = 1.5238
    assert r["mean_calls_per_query"] == D("1.5238")
    assert (r["unpriced_requests"], r["unpriced_models"]) == (1, ["mystery-model"])
    assert any("1 queries have a call whose model has no price" in n for n in r["notes"])
    # by feature: search k = 11..20: 0.002 × 155 = 0.31, mean 0.031; chat k = 1..10: 0.002 × 55 = 0.11, mean
    # 0.011, plus q-21 counted but unpriced
    assert r["by_feature"] == [
        {
            "feature": "search",
            "queries": 10,
            "priced_queries": 10,
            "mean_cost_usd": D("0.031"),
            "total_cost_usd": D("0.31"),
        },
        {
            "feature": "chat",
            "queries": 11,
            "priced_queries": 10,
            "mean_cost_usd": D("0.011"),
            "total_cost_usd": D("0.11"),
        },
    ]
    assert r["feature_count"] == 2
    top = r["most_expensive"]
    assert [(q["query_id"], q["cost_usd"], q["calls"]) for q in top] == [
        ("q-20", D("0.04"), 2),
        ("q-19", D("0.038"), 1),
        ("q-18", D("0.036"), 2),
    ]
    assert top[0] == top[0] | {
        "models": ["test-gpt", "test-gpt-mini"],
        "input_tokens": 110_000,
        "output_tokens": 0,
        "feature": "search",
        "first_call_at": "2026-11-03T09:00:00",
    }
    assert r["query_calls"] == []


@pytest.mark.anyio
async def test_requests_without_query_id_are_single_call_queries(priced: Settings) -> None:
    insert(priced, query_rows())
    r = await call(priced, "cost_per_query", {**WEEK, "limit": 20})
    # k = 1 and 3 (0.002 and 0.006) have no id: listed by their request id, one call each
    no_id = [q for q in r["most_expensive"] if q["query_id"] is None]
    assert [(q["cost_usd"], q["calls"]) for q in no_id] == [(D("0.006"), 1), (D("0.002"), 1)]
    assert all(q["request_id"] for q in no_id)
    assert r["single_call_queries_without_id"] == 2


@pytest.mark.anyio
async def test_one_query_drill_down_lists_its_calls_with_costs(priced: Settings) -> None:
    insert(priced, query_rows())
    async with connect(priced) as tools:
        r = await tools.call("cost_per_query", {**WEEK, "query_id": "q-20"})
        assert (r["query_id"], r["queries"], r["calls"], r["total_cost_usd"]) == ("q-20", 1, 2, D("0.04"))
        # calls in time order: 10,000 × 2 / 1M = 0.02 and 100,000 × 0.2 / 1M = 0.02
        assert [
            (c["request_id"], c["ts"], c["model"], c["input_tokens"], c["cost_usd"], c["latency_ms"], c["status"])
            for c in r["query_calls"]
        ] == [
            ("q20-a", "2026-11-03T09:00:00", "test-gpt", 10_000, D("0.02"), D("800.0"), "ok"),
            ("q20-b", "2026-11-03T09:01:00", "test-gpt-mini", 100_000, D("0.02"), D("1200.0"), "error"),
        ]

        assert [(d["source"], d["provider"], d["days"], d["requests"]) for d in r["data_sources"]] == [
            ("request_logs", "openai", 1, 2)
        ]

        r = await tools.call("cost_per_query", {**WEEK, "query_id": "q-21"})
        assert (r["queries"], r["unpriced_queries"], r["total_cost_usd"], r["mean_cost_usd"]) == (1, 1, D("0"), None)
        assert [c["cost_usd"] for c in r["query_calls"]] == [D("0.002"), None]

        r = await tools.call("cost_per_query", {**WEEK, "query_id": "nope"})
        assert (r["queries"], r["query_calls"]) == (0, [])
        assert any("no query 'nope' starts in this window" in n for n in r["notes"])


@pytest.mark.anyio
async def test_feature_and_model_filters_keep_whole_queries(priced: Settings) -> None:
    insert(priced, query_rows())
    async with connect(priced) as tools:
        r = await tools.call("cost_per_query", {**WEEK, "feature": "search"})
        assert (r["queries"], r["total_cost_usd"], r["p50_cost_usd"]) == (
            10,
            D("0.31"),
            D("0.03"),
        )  # 5th of 0.022..0.04
        # queries that used test-gpt-mini: only q-20, with its test-gpt call too: 0.02 + 0.02
        r = await tools.call("cost_per_query", {**WEEK, "model": "test-gpt-mini"})
        assert (r["model"], r["queries"], r["calls"], r["total_cost_usd"]) == ("test-gpt-mini", 1, 2, D("0.04"))
        # an unpriced model matches as reported
        r = await tools.call("cost_per_query", {**WEEK, "model": "mystery-model"})
        assert (r["queries"], r["priced_queries"], r["unpriced_queries"]) == (1, 0, 1)


@pytest.mark.anyio
async def test_a_query_belongs_to_the_window_of_its_first_call(priced: Settings) -> None:
    insert(
        priced,
        [
            # started before the window: not counted here, although its second call is inside
            req(datetime(2026, 10, 31, 23, 30), input_tokens=1_000, query_id="early"),
            req(datetime(2026, 11, 1, 0, 30), input_tokens=1_000, query_id="early"),
            # starts on the last evening: counted with its call after the end, 2 × 0.002 = 0.004
            req(datetime(2026, 11, 7, 23, 30), input_tokens=1_000, query_id="late"),
            req(datetime(2026, 11, 8, 0, 30), input_tokens=1_000, query_id="late"),
            req(at(5), input_tokens=1_000, query_id="inside"),  # 0.002
        ],
    )
    async with connect(priced) as tools:
        r = await tools.call("cost_per_query", WEEK)
        assert (r["queries"], r["calls"], r["calls_outside_window"], r["total_cost_usd"]) == (2, 3, 1, D("0.006"))
        r = await tools.call("cost_per_query", {**WEEK, "query_id": "late"})
        assert [c["ts"] for c in r["query_calls"]] == ["2026-11-07T23:30:00", "2026-11-08T00:30:00"]
        assert [(d["first_day"], d["last_day"], d["requests"]) for d in r["data_sources"]] == [
            ("2026-11-07", "2026-11-08", 2)
        ]
        # the next week does not count "late" again
        r = await tools.call("cost_per_query", {"start": "2026-11-08", "end": "2026-11-15"})
        assert r["queries"] == 0


# ------------------------------------------------------------------------------------ model swap
def gpt_rows() -> list[RequestRow]:
    return [
        # standard, as a dated alias: 6,000 uncached × 2 + 4,000 cached × 0.5 + 2,000 out × 8
        # = (12,000 + 2,000 + 16,000)/1M = 0.03
        req(at(2), "test-gpt-2026-01-01", input_tokens=10_000, cached=4_000, output=2_000, api_key_id="key-a"),
        # batch: 100,000 × 1 + 10,000 × 4 = (100,000 + 40,000)/1M = 0.14
        req(at(3), input_tokens=100_000, output=10_000, batch=True, api_key_id="key-b"),
        # other models and other weeks are not moved
        req(at(3), "test-claude", input_tokens=100_000),
        req(at(12), input_tokens=100_000),
    ]


@pytest.mark.anyio
async def test_swap_within_a_tokenizer_family_is_exact(priced: Settings) -> None:
    insert(priced, gpt_rows())
    r = await call(priced, "model_swap_savings", {"from_model": "openai/test-gpt", "to_model": "test-gpt-mini", **WEEK})
    assert (r["from_model"], r["to_model"], r["token_count_method"]) == ("test-gpt", "test-gpt-mini", "same_tokenizer")
    assert (r["requests"], r["input_tokens"], r["cached_input_tokens"], r["output_tokens"]) == (
        2,
        110_000,
        4_000,
        12_000,
    )
    # current 0.03 + 0.14 = 0.17
    # on mini: 6,000 × 0.2 + 4,000 × 0.05 + 2,000 × 0.8 = (1,200 + 200 + 1,600)/1M = 0.003;
    #          batch 100,000 × 0.1 + 10,000 × 0.4 = (10,000 + 4,000)/1M = 0.014; together 0.017
    assert (r["current_cost_usd"], r["projected_cost_usd"]) == (D("0.17"), D("0.017"))
    assert (r["projected_cost_low_usd"], r["projected_cost_high_usd"]) == (D("0.017"), D("0.017"))
    # savings 0.153 = 90 % of 0.17; per 30 days: 0.153 × 30 / 7 = 0.655714285714… (JSON: 1e-9)
    assert (r["savings_usd"], r["savings_low_usd"], r["savings_high_usd"]) == (D("0.153"),) * 3
    assert r["savings_pct"] == D("90.0")
    assert r["projected_monthly_savings_usd"] == D("0.655714286")
    assert (r["token_ratio"], r["token_ratio_low"], r["token_ratio_high"]) == (D("1.0"),) * 3
    assert not any("tokenizer" in c for c in r["caveats"])
    assert any("30 days from its length (7 days)" in c for c in r["caveats"])


@pytest.mark.anyio
async def test_traffic_share_moves_only_that_share(priced: Settings) -> None:
    insert(priced, gpt_rows())
    r = await call(
        priced,
        "model_swap_savings",
        {"from_model": "test-gpt", "to_model": "test-gpt-mini", "traffic_share": 0.5, **WEEK},
    )
    # 0.17 × 0.5 stays + 0.017 × 0.5 moved = 0.085 + 0.0085 = 0.0935; savings 0.0765 = 45 %
    assert (r["projected_cost_usd"], r["savings_usd"], r["savings_pct"]) == (D("0.0935"), D("0.0765"), D("45.0"))
    # 0.0765 × 30 / 7 = 0.327857142857…; moved tokens 110,000 × 0.5 = 55,000
    assert r["projected_monthly_savings_usd"] == D("0.327857143")
    assert (r["traffic_share"], r["projected_input_tokens"]) == (D("0.5"), 55_000)
    assert any(c.startswith("traffic_share 0.5") for c in r["caveats"])


@pytest.mark.anyio
async def test_swap_across_tokenizers_gives_a_range_and_crosses_the_long_context_threshold(priced: Settings) -> None:
    # one test-gpt request: 180,000 in, 1,000 out = (360,000 + 8,000)/1M = 0.368
    insert(priced, [req(at(4), input_tokens=180_000, output=1_000)])
    r = await call(priced, "model_swap_savings", {"from_model": "test-gpt", "to_model": "test-claude", **WEEK})
    assert r["current_cost_usd"] == D("0.368")
    assert (r["token_count_method"], r["token_ratio"], r["token_ratio_low"], r["token_ratio_high"]) == (
        "approximate",
        D("1.18"),
        D("1.1"),
        D("1.3"),
    )
    # expected ×1.18: 212,400 > 200,000 -> long context: (180,000 × 6 + 1,000 × 22.5)/1M = 1.1025; × 1.18 = 1.30095
    # low ×1.10: 198,000 -> standard: (180,000 × 3 + 1,000 × 15)/1M = 0.555; × 1.1 = 0.6105
    # high ×1.30: 234,000 -> long: 1.1025 × 1.3 = 1.43325
    assert (r["projected_cost_usd"], r["projected_cost_low_usd"], r["projected_cost_high_usd"]) == (
        D("1.30095"),
        D("0.6105"),
        D("1.43325"),
    )
    # savings 0.368 − 1.30095 = −0.93295 (−253.52 %); least saved at the high end, most at the low end
    assert (r["savings_usd"], r["savings_low_usd"], r["savings_high_usd"]) == (
        D("-0.93295"),
        D("-1.06525"),
        D("-0.2425"),
    )
    assert r["savings_pct"] == D("-253.52")
    assert (r["long_context_requests"], r["requests_over_context_window"]) == (1, 0)
    assert (r["projected_input_tokens"], r["projected_output_tokens"]) == (212_400, 1_180)
    caveats = " | ".join(r["caveats"])
    assert "about 1.18× as many test-claude tokens (band 1.1–1.3)" in caveats
    assert "range $0.6105–$1.43325" in caveats
    assert "1 (band 0–1) requests exceed test-claude's long-context threshold (200000" in caveats


@pytest.mark.anyio
async def test_swap_to_gemini_divides_by_the_source_ratio(priced: Settings) -> None:
    # test-claude, 240,000 in (> 200,000: long context), 1,000 out: (240,000 × 6 + 1,000 × 22.5)/1M = 1.4625
    insert(priced, [req(at(4), "test-claude", input_tokens=240_000, output=1_000)])
    r = await call(priced, "model_swap_savings", {"from_model": "test-claude", "to_model": "test-gemini", **WEEK})
    assert r["current_cost_usd"] == D("1.4625")
    # ratios gemini/claude: expected 1.00/1.18 = 0.8475, low 0.90/1.30 = 0.6923, high 1.15/1.10 = 1.0455
    assert (r["token_ratio"], r["token_ratio_low"], r["token_ratio_high"]) == (D("0.8475"), D("0.6923"), D("1.0455"))
    # expected: 240,000 / 1.18 = 203,390 > 200,000 -> long: (240,000 × 2.5 + 1,000 × 15)/1M = 0.615; / 1.18
    #   = 0.521186440677…
    # low: 240,000 × 0.9 / 1.3 = 166,154 -> standard: (240,000 × 1.25 + 1,000 × 10)/1M = 0.31; × 0.9 / 1.3
    #   = 0.214615384615…
    # high: 240,000 × 1.15 / 1.1 = 250,909 -> long: 0.615 × 1.15 / 1.1 = 0.642954545454…
    assert (r["projected_cost_usd"], r["projected_cost_low_usd"], r["projected_cost_high_usd"]) == (
        D("0.521186441"),
        D("0.214615385"),
        D("0.642954545"),
    )
    assert r["long_context_requests"] == 1


@pytest.mark.anyio
async def test_swap_prices_each_day_at_the_targets_price_of_that_day(priced: Settings) -> None:
    # test-gpt cost 10 per million input tokens until 2026-05-31 and 2 from 2026-06-01
    insert(
        priced,
        [
            req(datetime(2026, 5, 31, 23), "test-gpt-mini", input_tokens=1_000),  # 1,000 × 0.2 / 1M = 0.0002
            req(datetime(2026, 6, 1, 1), "test-gpt-mini", input_tokens=1_000),  # 0.0002
        ],
    )
    r = await call(
        priced,
        "model_swap_savings",
        {"from_model": "test-gpt-mini", "to_model": "test-gpt", "start": "2026-05-25", "end": "2026-06-08"},
    )
    # projected: 1,000 × 10 / 1M = 0.01 on May 31, 1,000 × 2 / 1M = 0.002 on June 1 -> 0.012
    assert (r["current_cost_usd"], r["projected_cost_usd"], r["savings_usd"]) == (D("0.0004"), D("0.012"), D("-0.0116"))
    # −0.0116 × 30 / 14 days = −0.024857142857…
    assert r["projected_monthly_savings_usd"] == D("-0.024857143")
    assert "prices changed on 2026-06-01: each day's traffic is priced at the prices in force that day." in r["caveats"]


@pytest.mark.anyio
async def test_batch_cache_and_context_window_fallbacks_are_caveats(priced: Settings) -> None:
    insert(
        priced,
        [
            # batch on test-gpt: 1,000 × 1 + 100 × 4 = 0.0014; test-legacy has no batch price -> standard:
            # 1,000 × 30 + 100 × 60 = (30,000 + 6,000)/1M = 0.036
            req(at(2), input_tokens=1_000, output=100, batch=True),
            # 9,000 in (2,000 cached), 500 out: 7,000 × 2 + 2,000 × 0.5 + 500 × 8 = (14,000 + 1,000 + 4,000)/1M
            # = 0.019; on test-legacy cache reads are input: 9,000 × 30 + 500 × 60 = (270,000 + 30,000)/1M = 0.3;
            # 9,500 tokens do not fit its 8,000-token window
            req(at(3), input_tokens=9_000, cached=2_000, output=500),
        ],
    )
    r = await call(priced, "model_swap_savings", {"from_model": "test-gpt", "to_model": "test-legacy", **WEEK})
    # current 0.0014 + 0.019 = 0.0204; projected 0.036 + 0.3 = 0.336; savings −0.3156 = −1547.06 %
    assert (r["current_cost_usd"], r["projected_cost_usd"], r["savings_usd"]) == (D("0.0204"), D("0.336"), D("-0.3156"))
    assert r["savings_pct"] == D("-1547.06")
    assert r["requests_over_context_window"] == 1
    caveats = r["caveats"]
    assert "1 batch requests move at test-legacy's standard rates: it has no batch price." in caveats
    assert "2000 cached input tokens are charged at test-legacy's input rate: it has no cache pricing." in caveats
    assert any(c.startswith("1 requests would not fit test-legacy's 8000-token context window") for c in caveats)
    assert any("o200k_base" in c and "cl100k_base" in c and "taken as equal" in c for c in caveats)
    assert any(c.startswith("test-legacy was deprecated on 2025-01-01") for c in caveats)


@pytest.mark.anyio
async def test_swap_rejects_unknown_and_identical_models(priced: Settings) -> None:
    async with connect(priced) as tools:
        text = await tools.error("model_swap_savings", {"from_model": "test-gpt", "to_model": "test-clod"})
        assert "to_model: unknown model 'test-clod'; close matches: test-claude" in text
        text = await tools.error("model_swap_savings", {"from_model": "tst-gpt", "to_model": "test-claude"})
        assert "from_model: unknown model 'tst-gpt'" in text and "test-gpt" in text
        text = await tools.error("model_swap_savings", {"from_model": "test-gpt", "to_model": "openai/test-gpt"})
        assert "to_model: 'openai/test-gpt' is the same model as from_model (test-gpt)" in text


@pytest.mark.anyio
async def test_swap_without_traffic_says_so(priced: Settings) -> None:
    r = await call(priced, "model_swap_savings", {"from_model": "test-gpt", "to_model": "test-gpt-mini", **WEEK})
    assert (r["requests"], r["current_cost_usd"], r["savings_usd"], r["savings_pct"]) == (0, D("0"), D("0"), None)
    assert r["caveats"] == ["no priced traffic of test-gpt in this window (after the filters): nothing to move."]


# ------------------------------------------------------------------------------------- windows
@pytest.mark.anyio
async def test_window_from_days_counts_back_from_now(priced: Settings) -> None:
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    insert(
        priced,
        [
            req(now - timedelta(days=2), input_tokens=1_000, api_key_id="key-a"),  # 0.002
            req(now - timedelta(days=10), input_tokens=1_000, api_key_id="key-a"),  # previous 7 days
        ],
    )
    r = await call(priced, "top_expensive_keys", {"days": 7})
    assert r["period"]["days"] == 7
    assert (r["total_cost_usd"], r["previous_period_total_cost_usd"]) == (D("0.002"), D("0.002"))
    assert r["keys"][0]["change_pct"] == D("0.0")


@pytest.mark.anyio
@pytest.mark.parametrize("tool", ["top_expensive_keys", "cost_per_query", "model_swap_savings"])
async def test_bad_windows_are_errors_naming_the_field(priced: Settings, tool: str) -> None:
    models = {"from_model": "test-gpt", "to_model": "test-gpt-mini"} if tool == "model_swap_savings" else {}
    async with connect(priced) as tools:
        text = await tools.error(tool, {**models, "start": "2026-11-08", "end": "2026-11-01"})
        assert "end: must be after start (2026-11-08T00:00:00), got 2026-11-01T00:00:00" in text
        text = await tools.error(tool, {**models, **WEEK, "days": 3})
        assert "days: give either start and end, or days, not all three" in text
        text = await tools.error(tool, {**models, "start": "last tuesday"})
        assert "start: expected an ISO date or datetime" in text
