"""`costhawk-mcp import --format otel`: OpenTelemetry GenAI spans from OTLP/JSON trace exports.

Files are hand-built OTLP/JSON `ExportTraceServiceRequest`s, one per line, as the Collector's file
exporter writes them (attributes as key/value lists, intValue as a JSON string).

Prices come from tests/data/test_pricing.json (per million tokens), from 2026-06-01 on:
  test-gpt     input 2, cached 0.5, output 8; priority input 4, cached 1, output 16
  test-claude  input 3, cache read 0.3, cache write (5 min) 3.75, output 15
  test-gemini  input 1.25, cached 0.125, output 10
  test-embed   input 0.02
"""

from __future__ import annotations

import json
from calendar import timegm
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from mcp.client import Client

from costhawk_mcp.cli import main
from costhawk_mcp.config import Settings
from costhawk_mcp.server.build import build_server
from costhawk_mcp.store.importer import AGGREGATE, import_file
from import_support import open_store, rows, write_lines

pytestmark = pytest.mark.usefixtures("test_catalog")
D = Decimal

T0 = datetime(2026, 7, 1, 9, 30)
T0_NS = timegm(T0.timetuple()) * 10**9
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACE_2 = "0af7651916cd43dd8448eb211c80319c"


# ------------------------------------------------------------------------------------ builders
def attr(key: str, value: Any) -> dict[str, Any]:
    """An OTLP/JSON attribute. Ints become intValue strings, as OTLP/JSON writes int64."""
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    if isinstance(value, dict):  # a raw value object, e.g. {"intValue": 1600} (a JSON number)
        return {"key": key, "value": value}
    return {"key": key, "value": {"stringValue": value}}


def span(
    span_id: str,
    name: str,
    attrs: dict[str, Any] | None = None,
    *,
    trace: str = TRACE,
    parent: str | None = None,
    start_ms: int = 0,
    duration_ms: int = 1500,
    status: int | str | None = None,
) -> dict[str, Any]:
    """A span starting `start_ms` after T0."""
    start = T0_NS + start_ms * 10**6
    out: dict[str, Any] = {
        "traceId": trace,
        "spanId": span_id,
        "name": name,
        "kind": 3,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + duration_ms * 10**6),
        "attributes": [attr(k, v) for k, v in (attrs or {}).items()],
    }
    if parent is not None:
        out["parentSpanId"] = parent
    if status is not None:
        out["status"] = {"code": status}
    return out


def export(*spans: dict[str, Any], service: str = "search-api") -> dict[str, Any]:
    """One ExportTraceServiceRequest: one resource, one scope."""
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [attr("service.name", service), attr("telemetry.sdk.language", "python")]},
                "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.openai"}, "spans": list(spans)}],
            }
        ]
    }


def chat(model: str, input_tokens: Any, output_tokens: Any, **more: Any) -> dict[str, Any]:
    """gen_ai attributes of a chat call (current conventions)."""
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": output_tokens,
        **more,
    }


def _requests(settings: Settings) -> dict[str, tuple[Any, ...]]:
    columns = (
        "request_id, query_id, ts, provider, model, model_id, input_tokens, cached_input_tokens, "
        "cache_write_tokens, output_tokens, tier, latency_ms, status, feature, user_id, cost_usd"
    )
    return {r[0]: r[1:] for r in rows(open_store(settings), f"SELECT {columns} FROM requests")}


# ------------------------------------------------------------------------------- one agent run
AGENT_RUN = [
    export(
        span("a1a1a1a1a1a1a1a1", "invoke_agent research", {"gen_ai.operation.name": "invoke_agent"}),
        span(
            "b2b2b2b2b2b2b2b2",
            "chat test-gpt",
            chat(
                "test-gpt",
                1000,
                100,
                **{
                    "gen_ai.response.model": "test-gpt-2026-01-01",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.usage.cache_read.input_tokens": 200,
                    "openai.response.service_tier": "priority",
                    "user.id": "u_7",
                },
            ),
            parent="a1a1a1a1a1a1a1a1",
            status=1,
        ),
        span(
            "c3c3c3c3c3c3c3c3",
            "execute_tool web_search",
            {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "web_search"},
            parent="a1a1a1a1a1a1a1a1",
            start_ms=1600,
        ),
        # Older spellings (gen_ai.system, OpenLLMetry's cache attributes), intValue as JSON numbers,
        # and a failed status: usage was reported, so it was billed.
        span(
            "d4d4d4d4d4d4d4d4",
            "anthropic.chat",
            {
                "gen_ai.system": "Anthropic",
                "gen_ai.request.model": "test-claude",
                "gen_ai.usage.input_tokens": {"intValue": 1600},
                "gen_ai.usage.output_tokens": {"intValue": 50},
                "gen_ai.usage.cache_read_input_tokens": {"intValue": 1000},
                "gen_ai.usage.cache_creation_input_tokens": {"intValue": 500},
            },
            parent="a1a1a1a1a1a1a1a1",
            start_ms=3000,
            duration_ms=2250,
            status=2,
        ),
        span("e5e5e5e5e5e5e5e5", "GET /search", {"http.request.method": "GET"}, parent="c3c3c3c3c3c3c3c3"),
    ),
    # A second export line of the same trace, from a process that never named its service.
    export(
        span(
            "f6f6f6f6f6f6f6f6",
            "embeddings test-embed",
            {
                "gen_ai.operation.name": "embeddings",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "test-embed",
                "gen_ai.usage.input_tokens": 1000.0,  # a doubleValue: whole, so accepted
            },
            start_ms=6000,
            duration_ms=120,
        ),
        span(
            "0707070707070707",
            "generate_content test-gemini",
            {
                "gen_ai.operation.name": "generate_content",
                "gen_ai.provider.name": "gcp.gemini",
                "gen_ai.request.model": "test-gemini",
                "gen_ai.usage.input_tokens": 2000,
                "gen_ai.usage.output_tokens": 100,
                "gen_ai.usage.cache_read.input_tokens": 1000,
            },
            start_ms=7000,
            duration_ms=900,
        ),
        service="unknown_service:python",
    ),
]


def test_genai_spans_become_requests_with_all_prompt_tokens_and_exact_costs(tmp_path: Path, settings: Settings) -> None:
    path = write_lines(tmp_path / "traces.jsonl", AGENT_RUN)
    report = import_file(open_store(settings), path, fmt="otel")
    assert (report.format, report.lines, report.spans, report.inserted, report.rejected) == ("otel", 2, 7, 4, 0)
    assert report.skipped_by_reason == {
        "a GenAI agent or tool span without usage (not a model call)": 2,
        "not a GenAI model call (no gen_ai usage, operation or model attributes)": 1,
    }
    got = _requests(settings)
    # Priority tier: (1000 - 200) × $4 + 200 × $1 + 100 × $16 = 3200 + 200 + 1600 = 5000 → $0.005.
    # The response model (a dated alias) names what was billed.
    assert got["b2b2b2b2b2b2b2b2"] == (
        TRACE,
        T0,
        "openai",
        "test-gpt-2026-01-01",
        "test-gpt",
        1000,
        200,
        0,
        100,
        "priority",
        1500.0,
        "ok",
        "search-api",
        "u_7",
        D("0.005"),
    )
    # input_tokens 1600 already counts the 1000 read and 500 written (as the conventions say):
    # 100 × $3 + 1000 × $0.3 + 500 × $3.75 + 50 × $15 = 300 + 300 + 1875 + 750 = 3225 → $0.003225.
    assert got["d4d4d4d4d4d4d4d4"][2:] == (
        "anthropic",
        "test-claude",
        "test-claude",
        1600,
        1000,
        500,
        50,
        "standard",
        2250.0,
        "error",
        "search-api",
        None,
        D("0.003225"),
    )
    # Embeddings have no output tokens: 1000 × $0.02 = 20 → $0.00002; no service name (SDK default).
    assert got["f6f6f6f6f6f6f6f6"][5:] == (1000, 0, 0, 0, "standard", 120.0, None, None, None, D("0.00002"))
    # gcp.gemini is Google: 1000 × $1.25 + 1000 × $0.125 + 100 × $10 = 1250 + 125 + 1000 → $0.002375.
    assert got["0707070707070707"][2:4] == ("google", "test-gemini")
    assert got["0707070707070707"][-1] == D("0.002375")
    # 0.005 + 0.003225 + 0.00002 + 0.002375 = 0.01062
    assert report.cost_usd == D("0.01062")


@pytest.mark.anyio
async def test_cost_per_query_shows_a_trace_as_one_query(tmp_path: Path, settings: Settings) -> None:
    other = export(span("1818181818181818", "chat test-gpt", chat("test-gpt", 500, 50), trace=TRACE_2))
    path = write_lines(tmp_path / "traces.jsonl", [*AGENT_RUN, other])
    assert main(["import", str(path), "--json"]) == 0
    window = {"start": "2026-07-01", "end": "2026-07-02"}
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("cost_per_query", {**window, "query_id": TRACE})
        assert not result.is_error, result.content
        run = json.loads(result.content[0].text, parse_float=Decimal)  # type: ignore[union-attr]
        overall = json.loads(
            (await client.call_tool("cost_per_query", window)).content[0].text,  # type: ignore[union-attr]
            parse_float=Decimal,
        )
    # The agent run's four model calls are one query: 0.005 + 0.003225 + 0.00002 + 0.002375 = 0.01062.
    assert (run["queries"], run["calls"], run["total_cost_usd"]) == (1, 4, D("0.01062"))
    assert [c["request_id"] for c in run["query_calls"]] == [
        "b2b2b2b2b2b2b2b2",
        "d4d4d4d4d4d4d4d4",
        "f6f6f6f6f6f6f6f6",
        "0707070707070707",
    ]
    # Two traces, two queries: the other costs 500 × $2 + 50 × $8 = 1400 → $0.0014.
    assert (overall["queries"], overall["calls"], overall["total_cost_usd"]) == (2, 5, D("0.01202"))
    assert overall["mean_calls_per_query"] == D("2.5")


# ------------------------------------------------------------------------------------ bad spans
def test_a_bad_span_is_reported_with_its_line_and_its_place_in_the_line(tmp_path: Path, settings: Settings) -> None:
    lines: list[Any] = [
        export(
            span("1111111111111111", "chat test-gpt", chat("test-gpt", 1000, 100)),
            span("2222222222222222", "chat test-gpt", chat("test-gpt", 1000, -1)),
            span("3333333333333333", "chat test-gpt", chat("test-gpt", True, 100)),
        ),
        "",
        '{"resourceSpans": [',
        {"resourceLogs": [{"resource": {}, "scopeLogs": []}]},
        export(
            {**span("4444444444444444", "chat test-gpt", chat("test-gpt", 10, 1)), "startTimeUnixNano": "0"},
            span("5555555555555555", "chat", {"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 5}),
            span("6666666666666666", "chat test-gpt", chat("test-gpt", 1.5, 1)),
        ),
        # Cache parts larger than input: the instrumentation reports Anthropic's own input_tokens.
        export(
            span(
                "7777777777777777",
                "chat test-claude",
                chat("test-claude", 100, 10, **{"gen_ai.usage.cache_read.input_tokens": 1000}),
            )
        ),
        export(span("8888888888888888", "chat test-gpt", chat("test-gpt", "2000", "10"))),
    ]
    report = import_file(open_store(settings), write_lines(tmp_path / "bad.jsonl", lines))
    assert (report.format, report.lines, report.blank, report.spans) == ("otel", 7, 1, 8)
    assert (report.inserted, report.rejected, report.bad_spans) == (2, 8, 6)
    assert [(b.line, b.reason) for b in report.bad_lines] == [
        (
            1,
            'span 2 of 3 (2222222222222222 "chat test-gpt"): gen_ai.usage.output_tokens: '
            "must be a whole number from 0 to 1e15, got -1",
        ),
        (
            1,
            'span 3 of 3 (3333333333333333 "chat test-gpt"): gen_ai.usage.input_tokens: '
            "must be a whole number from 0 to 1e15, got true",
        ),
        (3, "not valid JSON"),
        (4, "an OTLP logs export (resourceLogs), not traces"),
        (
            5,
            'span 1 of 3 (4444444444444444 "chat test-gpt"): startTimeUnixNano: '
            "must be Unix nanoseconds (a whole number > 0), got 0",
        ),
        (
            5,
            'span 2 of 3 (5555555555555555 "chat"): gen_ai.request.model: missing (nor gen_ai.response.model), '
            "so the call cannot be priced",
        ),
        (
            5,
            'span 3 of 3 (6666666666666666 "chat test-gpt"): gen_ai.usage.input_tokens: '
            "must be a whole number from 0 to 1e15, got 1.5",
        ),
        (
            6,
            'span 1 of 1 (7777777777777777 "chat test-claude"): gen_ai.usage.cache_read.input_tokens + '
            "gen_ai.usage.cache_creation.input_tokens: more than gen_ai.usage.input_tokens, which by the GenAI "
            "conventions includes them (the instrumentation seems to report Anthropic's own input_tokens, "
            "without the cache), got 1000 + 0 > 100",
        ),
    ]
    # Digit strings are whole numbers too: 2000 × $2 + 10 × $8 = 4080 → $0.00408; plus 1000 × $2 + 100 × $8 → $0.0028.
    assert sorted(_requests(settings)) == ["1111111111111111", "8888888888888888"]
    assert report.cost_usd == D("0.00688")


def test_spans_that_are_no_request_are_skipped_and_counted_but_a_call_without_usage_is_reported(
    tmp_path: Path, settings: Settings
) -> None:
    line = export(
        span("0000000000000001", "POST /api/answer", {"http.response.status_code": 200}),
        span("0000000000000002", "invoke_agent helper", {"gen_ai.operation.name": "invoke_agent"}),
        # A failed call without usage was not billed.
        span(
            "0000000000000003",
            "chat test-gpt",
            {"gen_ai.operation.name": "chat", "gen_ai.request.model": "test-gpt"},
            status=2,
        ),
        # A call that succeeded but reported no usage (a stream without usage): its cost is unknown.
        span(
            "0000000000000004", "chat test-gpt", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "test-gpt"}
        ),
        span("0000000000000005", "chat test-gpt", chat("test-gpt", 1000, 100)),
    )
    report = import_file(open_store(settings), write_lines(tmp_path / "mixed.jsonl", [line, export()]))
    assert (report.lines, report.spans, report.inserted, report.skipped, report.rejected) == (2, 5, 1, 4, 1)
    assert report.skipped_by_reason == {
        "a GenAI agent or tool span without usage (not a model call)": 1,
        "a failed GenAI call without usage: nothing was billed": 1,
        "an export request without spans": 1,
        "not a GenAI model call (no gen_ai usage, operation or model attributes)": 1,
    }
    assert [(b.line, b.reason.split(": ", 1)[1].split(";")[0]) for b in report.bad_lines] == [
        (1, "gen_ai.usage.input_tokens: missing")
    ]
    assert report.bad_lines[0].reason.startswith('span 4 of 5 (0000000000000004 "chat test-gpt")')


def test_an_aggregate_span_above_the_calls_is_not_counted_twice(tmp_path: Path, settings: Settings) -> None:
    run = export(
        # An agent run reporting the total of its calls (3000 in, 300 out), with a step in between.
        span(
            "a000000000000001",
            "invoke_agent planner",
            {"gen_ai.operation.name": "invoke_agent", **chat("test-gpt", 3000, 300)},
        ),
        span("a000000000000002", "step 1", {}, parent="a000000000000001"),
        span("a000000000000003", "chat test-gpt", chat("test-gpt", 1000, 100), parent="a000000000000002"),
        span("a000000000000004", "chat test-gpt", chat("test-gpt", 2000, 200), parent="a000000000000002"),
    )
    # A framework's span around the SDK's own span of the same call (both carry its usage), in
    # another export line: the SDK's span counts.
    wrapped = export(
        span("b000000000000001", "ChatOpenAI.chat", chat("test-gpt", 500, 50), trace=TRACE_2),
        span("b000000000000002", "chat test-gpt", chat("test-gpt", 500, 50), trace=TRACE_2, parent="b000000000000001"),
    )
    report = import_file(open_store(settings), write_lines(tmp_path / "agg.jsonl", [run, wrapped]))
    assert (report.inserted, report.rejected, report.skipped_by_reason.get(AGGREGATE)) == (3, 0, 2)
    assert sorted(_requests(settings)) == ["a000000000000003", "a000000000000004", "b000000000000002"]
    # 1000 × $2 + 100 × $8 = 2800, 2000 × $2 + 200 × $8 = 5600, 500 × $2 + 50 × $8 = 1400 → $0.0098
    assert report.cost_usd == D("0.0098")


def test_a_span_exported_twice_is_stored_once_and_reimporting_changes_nothing(
    tmp_path: Path, settings: Settings
) -> None:
    call = span("c000000000000001", "chat test-gpt", chat("test-gpt", 1000, 100))
    retried = export(call, span("c000000000000002", "chat test-gpt", chat("test-gpt", 10, 1)))
    path = write_lines(tmp_path / "retry.jsonl", [export(call), retried])
    store = open_store(settings)
    first, second = import_file(store, path), import_file(store, path)
    assert (first.inserted, first.duplicates) == (2, 1)
    assert (second.inserted, second.duplicates) == (0, 3)
    # 1000 × $2 + 100 × $8 = 2800 and 10 × $2 + 1 × $8 = 28 → $0.002828
    assert rows(store, "SELECT count(*), sum(cost_usd) FROM requests") == [(2, D("0.002828"))]


# ------------------------------------------------------------------------------ detection, CLI
def test_otlp_exports_are_recognised_from_the_first_line(tmp_path: Path, settings: Settings) -> None:
    traces = write_lines(
        tmp_path / "otel-traces.json", [export(span("d000000000000001", "chat", chat("test-gpt", 1, 1)))]
    )
    logs_first = write_lines(
        tmp_path / "mixed.jsonl",
        [{"resourceLogs": []}, export(span("d000000000000002", "chat", chat("test-gpt", 1, 1)))],
    )
    store = open_store(settings)
    assert [
        (r.format, r.inserted, r.rejected) for r in (import_file(store, traces), import_file(store, logs_first))
    ] == [
        ("otel", 1, 0),
        ("otel", 1, 1),
    ]


def test_cli_summary_of_an_otel_import(tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_lines(tmp_path / "traces.jsonl", AGENT_RUN)
    assert main(["import", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(
        f"{path} (otel): 2 lines, 7 spans: 4 requests inserted, 0 duplicates skipped, 3 other spans skipped ["
    )
    assert out[1:] == [
        "  cost of the new requests: $0.01062 for 4 priced requests",
        "  skipped: 2 × a GenAI agent or tool span without usage (not a model call); "
        "1 × not a GenAI model call (no gen_ai usage, operation or model attributes)",
    ]
    assert main(["import", str(path), "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)["files"]
    assert {k: entry[k] for k in ("format", "lines", "spans", "inserted", "duplicates", "skipped", "rejected")} == {
        "format": "otel",
        "lines": 2,
        "spans": 7,
        "inserted": 0,
        "duplicates": 4,
        "skipped": 3,
        "rejected": 0,
    }
