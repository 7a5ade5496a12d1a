"""`costhawk-mcp import`: formats, normalisation of cache tokens, exact costs, bad lines, secrets, the CLI.

Prices come from tests/data/test_pricing.json (per million tokens):
  test-gpt    before 2026-06-01: input 10, cached 5, output 40; batch input 5, output 20
              from 2026-06-01:   input 2, cached 0.5, output 8; batch input 1, output 4
  test-claude input 3, cache read 0.3, cache write 5m 3.75, 1h 6, output 15;
              batch input 1.5, output 7.5
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
from calendar import timegm
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from costhawk_mcp.cli import main
from costhawk_mcp.config import Settings
from costhawk_mcp.errors import InvalidArgument
from costhawk_mcp.pricing.catalog import load_catalog
from costhawk_mcp.pricing.cost import TokenUsage, cost, service_tier
from costhawk_mcp.store import pricing_sql
from costhawk_mcp.store.db import Database
from costhawk_mcp.store.import_formats import FORMATS, Field, Format, register
from costhawk_mcp.store.importer import STAGING_OUT, import_file
from costhawk_mcp.store.store import RequestRow, Store
from import_support import canonical, open_store, rows, run_cli, store_at, write_lines

pytestmark = pytest.mark.usefixtures("test_catalog")
D = Decimal

REQUEST_COLUMNS = (
    "request_id, ts, provider, model, model_id, input_tokens, cached_input_tokens, cache_write_tokens, "
    "cache_write_1h_tokens, output_tokens, batch, tier, cost_usd"
)


def _epoch(text: str) -> int:
    return timegm(datetime.fromisoformat(text).timetuple())


def _requests(settings: Settings) -> dict[str, tuple[object, ...]]:
    return {r[0]: r[1:] for r in rows(open_store(settings), f"SELECT {REQUEST_COLUMNS} FROM requests")}


# ----------------------------------------------------------------------------------- raw formats
def test_openai_chat_completion_counts_cached_tokens_once(tmp_path: Path, settings: Settings) -> None:
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": _epoch("2026-07-01T00:00:00"),
        "model": "test-gpt-2026-01-01",
        "usage": {
            "prompt_tokens": 1000,
            "completion_tokens": 100,
            "total_tokens": 1100,
            "prompt_tokens_details": {"cached_tokens": 200},
        },
    }
    report = import_file(open_store(settings), write_lines(tmp_path / "openai.jsonl", [completion]))
    assert (report.format, report.inserted, report.rejected) == ("openai", 1, 0)
    # prompt_tokens already includes the 200 cached: 800 × $2 + 200 × $0.5 + 100 × $8 = $0.0025
    assert _requests(settings)["chatcmpl-1"] == (
        datetime(2026, 7, 1),
        "openai",
        "test-gpt-2026-01-01",
        "test-gpt",
        1000,
        200,
        0,
        0,
        100,
        False,
        "standard",
        D("0.0025"),
    )
    assert report.cost_usd == D("0.0025")


def test_openai_responses_api_wrapper_and_batch_output_lines(tmp_path: Path, settings: Settings) -> None:
    wrapped = {
        "timestamp": "2026-07-02T08:00:00Z",
        "api_key_id": "key_search",
        "query_id": "q-1",
        "feature": "answer",
        "response": {
            "id": "resp_1",
            "object": "response",
            "created_at": _epoch("2026-05-01T00:00:00"),  # our own timestamp beside it wins
            "model": "test-gpt",
            "usage": {"input_tokens": 500, "input_tokens_details": {"cached_tokens": 100}, "output_tokens": 50},
        },
    }
    batch_line = {
        "id": "batch_req_1",
        "custom_id": "c-1",
        "response": {
            "status_code": 200,
            "request_id": "req_x",
            "body": {
                "id": "chatcmpl-b1",
                "object": "chat.completion",
                "created": _epoch("2026-07-03T00:00:00"),
                "model": "test-gpt",
                "usage": {"prompt_tokens": 1000, "completion_tokens": 100},
            },
        },
        "error": None,
    }
    failed = {"id": "batch_req_2", "custom_id": "c-2", "response": None, "error": {"code": "server_error"}}
    report = import_file(open_store(settings), write_lines(tmp_path / "o.jsonl", [wrapped, batch_line, failed]))
    assert (report.format, report.inserted, report.rejected) == ("openai", 2, 1)
    assert [(b.line, b.reason) for b in report.bad_lines] == [
        (3, "the request failed, so nothing was billed, got server_error")
    ]
    got = _requests(settings)
    # 400 × $2 + 100 × $0.5 + 50 × $8 = 800 + 50 + 400 = 1250 → $0.00125
    assert got["resp_1"][0] == datetime(2026, 7, 2, 8)
    assert got["resp_1"][4:7] == (500, 100, 0)
    assert got["resp_1"][-1] == D("0.00125")
    # Batch: 1000 × $1 + 100 × $4 = 1400 → $0.0014
    assert got["chatcmpl-b1"][9:] == (True, "batch", D("0.0014"))
    assert rows(
        open_store(settings), "SELECT api_key_id, query_id, feature FROM requests WHERE request_id = 'resp_1'"
    ) == [("key_search", "q-1", "answer")]


def test_anthropic_response_adds_cache_reads_and_writes_back_into_input(tmp_path: Path, settings: Settings) -> None:
    message = {
        "timestamp": "2026-07-01T00:00:00Z",
        "message": {
            "id": "msg_1",
            "type": "message",
            "model": "test-claude",
            "usage": {
                "input_tokens": 100,
                "cache_read_input_tokens": 1000,
                "cache_creation_input_tokens": 500,
                "output_tokens": 50,
            },
        },
    }
    report = import_file(open_store(settings), write_lines(tmp_path / "a.jsonl", [message]))
    assert (report.format, report.inserted) == ("anthropic", 1)
    # Stored input is every prompt token: 100 + 1000 + 500 = 1600.
    # 100 × $3 + 1000 × $0.3 + 500 × $3.75 + 50 × $15 = 300 + 300 + 1875 + 750 = 3225 → $0.003225
    assert _requests(settings)["msg_1"][4:] == (1600, 1000, 500, 0, 50, False, "standard", D("0.003225"))


def test_anthropic_one_hour_cache_writes_and_message_batch_results(tmp_path: Path, settings: Settings) -> None:
    split = {
        "id": "msg_2",
        "type": "message",
        "model": "test-claude",
        "usage": {
            "input_tokens": 100,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 500,
            "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 300},
            "output_tokens": 50,
        },
    }
    succeeded = {
        "custom_id": "b-1",
        "result": {
            "type": "succeeded",
            "message": {
                "id": "msg_3",
                "type": "message",
                "model": "test-claude",
                "usage": {"input_tokens": 100, "output_tokens": 50},
            },
        },
    }
    errored = {"custom_id": "b-2", "result": {"type": "errored", "error": {"type": "invalid_request_error"}}}
    no_time = {**split, "id": "msg_4"}
    path = write_lines(tmp_path / "batch.jsonl", [split, succeeded, errored, no_time])
    report = import_file(open_store(settings), path, default_timestamp=datetime(2026, 7, 1))
    assert (report.inserted, report.rejected) == (4 - 1, 1)
    assert [b.line for b in report.bad_lines] == [3]
    got = _requests(settings)
    # 100 × $3 + 200 × $3.75 + 300 × $6 + 50 × $15 = 300 + 750 + 1800 + 750 = 3600 → $0.0036
    assert got["msg_2"][4:] == (600, 0, 200, 300, 50, False, "standard", D("0.0036"))
    # Batch: 100 × $1.5 + 50 × $7.5 = 150 + 375 = 525 → $0.000525
    assert got["msg_3"][9:] == (True, "batch", D("0.000525"))
    assert got["msg_2"][0] == datetime(2026, 7, 1)


def test_an_anthropic_line_without_a_timestamp_is_a_bad_line_saying_so(tmp_path: Path, settings: Settings) -> None:
    bare = {"id": "msg_9", "type": "message", "model": "test-claude", "usage": {"input_tokens": 1, "output_tokens": 1}}
    report = import_file(open_store(settings), write_lines(tmp_path / "bare.jsonl", [bare]))
    assert report.inserted == 0
    assert report.bad_lines[0].line == 1
    assert "timestamp: missing" in report.bad_lines[0].reason
    assert "--default-timestamp" in report.bad_lines[0].reason


# --------------------------------------------------------------------------------- idempotency
def test_importing_a_file_twice_changes_nothing(tmp_path: Path, settings: Settings) -> None:
    path = write_lines(tmp_path / "x.jsonl", [canonical(f"r{i}") for i in range(5)])
    store = open_store(settings)
    first = import_file(store, path)
    totals = rows(store, "SELECT count(*), sum(input_tokens), sum(cost_usd) FROM requests")
    second = import_file(store, path)
    assert (first.inserted, first.duplicates) == (5, 0)
    assert (second.inserted, second.duplicates) == (0, 5)
    # 5 × (1000 × $2 + 100 × $8) = 5 × $0.0028 = $0.014
    assert totals == [(5, 5000, D("0.014"))]
    assert rows(store, "SELECT count(*), sum(input_tokens), sum(cost_usd) FROM requests") == totals
    assert rows(store, "SELECT inserted, duplicates, lines_read FROM imports ORDER BY import_id") == [
        (5, 0, 5),
        (0, 5, 5),
    ]


def test_the_same_ids_in_two_files_are_stored_once_and_the_first_line_wins(tmp_path: Path, settings: Settings) -> None:
    a = write_lines(tmp_path / "a.jsonl", [canonical("r1", output_tokens=1), canonical("r1", output_tokens=2)])
    b = write_lines(tmp_path / "b.jsonl", [canonical("r1", output_tokens=3), canonical("r2")])
    store = open_store(settings)
    first, second = import_file(store, a), import_file(store, b)
    assert (first.inserted, first.duplicates, second.inserted, second.duplicates) == (1, 1, 1, 1)
    assert rows(store, "SELECT request_id, output_tokens FROM requests ORDER BY 1") == [("r1", 1), ("r2", 100)]


def test_the_first_of_repeated_ids_wins_even_when_lines_are_far_apart(tmp_path: Path, settings: Settings) -> None:
    lines = [canonical(f"r{i}") for i in range(50)]
    lines[7], lines[40], lines[45] = (canonical("dup", feature=f) for f in ("first", "second", "third"))
    # Two identical lines, then a different one: one row, from the first.
    lines[10], lines[20], lines[30] = (canonical("twin", feature=f) for f in ("x", "x", "y"))
    report = import_file(open_store(settings), write_lines(tmp_path / "d.jsonl", lines))
    assert (report.inserted, report.duplicates) == (46, 4)
    assert rows(
        open_store(settings), "SELECT request_id, feature FROM requests WHERE feature IS NOT NULL ORDER BY 1"
    ) == [
        ("dup", "first"),
        ("twin", "x"),
    ]


# ------------------------------------------------------------------------------------ bad lines
BAD_FILE = [
    canonical("good-1"),  # 1
    "",  # 2: blank
    '{"request_id": "broken", ',  # 3: malformed JSON
    {k: v for k, v in canonical("no-model").items() if k != "model"},  # 4
    canonical("negative", input_tokens=-3),  # 5
    canonical("too-cached", input_tokens=10, cached_input_tokens=11),  # 6
    canonical("bad-time", timestamp="2026-13-01T00:00:00Z"),  # 7
    "   ",  # 8: blank (spaces)
    canonical("good-2"),  # 9
    "[1, 2]",  # 10
]
BAD_EXPECTED = [
    (3, "not valid JSON"),
    (4, "model: missing (a non-empty string)"),
    (5, "input_tokens: must be a whole number from 0 to 1e15, got -3"),
    (
        6,
        "cached_input_tokens + cache_write_input_tokens + cache_write_1h_input_tokens: more than input_tokens, "
        "which counts every prompt token, cache reads and writes included, got 11 + 0 + 0 > 10",
    ),
    (7, "timestamp: must be an RFC 3339 date-time such as 2026-11-27T09:30:00Z, got 2026-13-01T00:00:00Z"),
    (10, "not a JSON object"),
]


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_bad_lines_are_reported_by_exact_line_number_and_good_lines_kept(
    tmp_path: Path, settings: Settings, newline: str
) -> None:
    path = write_lines(tmp_path / "bad.jsonl", BAD_FILE, newline=newline)
    report = import_file(open_store(settings), path)
    assert (report.lines, report.inserted, report.rejected, report.blank) == (10, 2, 6, 2)
    assert [(b.line, b.reason) for b in report.bad_lines] == BAD_EXPECTED
    assert sorted(_requests(settings)) == ["good-1", "good-2"]
    assert report.rejected_by_reason["not valid JSON"] == 1


def test_a_file_mixing_lf_and_crlf_keeps_its_line_numbers(tmp_path: Path, settings: Settings) -> None:
    parts = [json.dumps(canonical("a")), "\r\n", "", "\n", json.dumps(canonical("b", input_tokens=-1)), "\r\n"]
    parts += [json.dumps(canonical("c")), "\n", "", "\r\n", "oops", "\n"]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes("".join(parts).encode())
    report = import_file(open_store(settings), path)
    assert (report.lines, report.inserted, report.blank) == (6, 2, 2)
    assert [b.line for b in report.bad_lines] == [3, 6]


def test_lines_that_are_not_utf8_are_rejected_and_later_numbers_stay_exact(tmp_path: Path, settings: Settings) -> None:
    good = json.dumps(canonical("ok-1")).encode()
    broken = b'{"request_id": "latin", "model": "caf\xe9"}'
    negative = json.dumps(canonical("neg", output_tokens=-1)).encode()
    path = tmp_path / "enc.jsonl"
    path.write_bytes(b"\n".join([good, broken, b"", negative, json.dumps(canonical("ok-2")).encode()]) + b"\n")
    report = import_file(open_store(settings), path)
    assert (report.lines, report.inserted, report.rejected, report.blank) == (5, 2, 2, 1)
    assert [(b.line, b.reason.split(",")[0]) for b in report.bad_lines] == [
        (2, "not valid UTF-8 text"),
        (4, "output_tokens: must be a whole number from 0 to 1e15"),
    ]


def test_token_counts_must_be_whole_numbers(tmp_path: Path, settings: Settings) -> None:
    lines = [
        canonical("int", input_tokens=1000),
        canonical("digits", input_tokens="1000"),  # digit-only strings are accepted (BigQuery exports)
        canonical("float-whole", input_tokens=1000.0),
        canonical("fraction", input_tokens=1.5),
        canonical("negative", input_tokens=-3),
        canonical("word", input_tokens="12k"),
        canonical("bool", input_tokens=True),
        canonical("huge", input_tokens=10**16),
        canonical("null", input_tokens=None),
        canonical("object", cached_input_tokens={"n": 1}),
    ]
    report = import_file(open_store(settings), write_lines(tmp_path / "t.jsonl", lines))
    assert sorted(_requests(settings)) == ["digits", "float-whole", "int"]
    assert [(b.line, b.reason) for b in report.bad_lines] == [
        (4, "input_tokens: must be a whole number from 0 to 1e15, got 1.5"),
        (5, "input_tokens: must be a whole number from 0 to 1e15, got -3"),
        (6, "input_tokens: must be a whole number from 0 to 1e15, got 12k"),
        (7, "input_tokens: must be a whole number from 0 to 1e15, got true"),
        (8, "input_tokens: must be a whole number from 0 to 1e15, got 10000000000000000"),
        (9, "input_tokens: missing (a whole number ≥ 0)"),
        (10, 'cached_input_tokens: must be a whole number from 0 to 1e15, got {"n":1}'),
    ]


def test_other_field_rules(tmp_path: Path, settings: Settings) -> None:
    lines = [
        canonical("batch-word", batch="maybe"),
        canonical("latency", latency_ms=-1),
        canonical("cost-text", cost_usd="abc"),
        canonical("cost-bool", cost_usd=True),
        canonical("cost-negative", cost_usd=-0.5),
        {**canonical("x"), "request_id": ""},
        canonical("epoch", timestamp="infinity"),
        canonical("fine", batch="true", latency_ms=12.5, status=200, cost_usd="0.25"),
    ]
    report = import_file(open_store(settings), write_lines(tmp_path / "f.jsonl", lines))
    assert [(b.line, b.reason) for b in report.bad_lines] == [
        (1, "batch: must be true or false, got maybe"),
        (2, "latency_ms: must be a number ≥ 0, got -1"),
        (3, "cost_usd: must be a number of US dollars ≥ 0, got abc"),
        (4, "cost_usd: must be a number of US dollars ≥ 0, got true"),
        (5, "cost_usd: must be a number of US dollars ≥ 0, got -0.5"),
        (6, "request_id: missing (a non-empty string)"),
        (7, "timestamp: must be an RFC 3339 date-time such as 2026-11-27T09:30:00Z, got infinity"),
    ]
    assert rows(open_store(settings), "SELECT batch, latency_ms, status, reported_cost_usd FROM requests") == [
        (True, 12.5, "200", D("0.25"))
    ]


def test_reported_cost_is_read_exactly_not_through_a_double(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "cost.jsonl"
    line = json.dumps(canonical("exact"))[:-1] + ', "cost_usd": 1234567.123456789012345}'
    path.write_text(line + "\n" + json.dumps(canonical("null-cost", cost_usd=None)) + "\n")
    import_file(open_store(settings), path)
    # As a double this would be 1234567.1234567890; DECIMAL(38, 15) keeps every digit.
    assert rows(open_store(settings), "SELECT request_id, reported_cost_usd FROM requests ORDER BY 1") == [
        ("exact", D("1234567.123456789012345")),
        ("null-cost", None),
    ]


# ---------------------------------------------------------------------------- prices and times
def test_rows_either_side_of_a_price_change_get_their_days_price(tmp_path: Path, settings: Settings) -> None:
    lines = [
        canonical("before", timestamp="2026-05-31T23:59:59Z", cached_input_tokens=0),
        canonical("after", timestamp="2026-06-01T00:00:00Z", cached_input_tokens=0),
        # 01:30 at UTC+2 is 23:30 UTC the day before: the old price.
        canonical("offset", timestamp="2026-06-01T01:30:00+02:00", cached_input_tokens=0),
        # No offset: taken as UTC, so the new price.
        canonical("naive", timestamp="2026-06-01T01:30:00", cached_input_tokens=0),
    ]
    import_file(open_store(settings), write_lines(tmp_path / "p.jsonl", lines))
    got = {k: (v[0], v[-1]) for k, v in _requests(settings).items()}
    # before: 1000 × $10 + 100 × $40 = 14000 → $0.014; after: 1000 × $2 + 100 × $8 = 2800 → $0.0028
    assert got == {
        "before": (datetime(2026, 5, 31, 23, 59, 59), D("0.014")),
        "after": (datetime(2026, 6, 1), D("0.0028")),
        "offset": (datetime(2026, 5, 31, 23, 30), D("0.014")),
        "naive": (datetime(2026, 6, 1, 1, 30), D("0.0028")),
    }


def test_an_unpriced_model_keeps_its_tokens_and_an_unknown_cost(tmp_path: Path, settings: Settings) -> None:
    lines = [canonical("known"), canonical("mystery", model="acme-llm-9", provider="acme")]
    report = import_file(open_store(settings), write_lines(tmp_path / "u.jsonl", lines))
    assert (report.unpriced_requests, report.unpriced_models) == (1, ["acme-llm-9"])
    assert report.cost_usd == D("0.0028")  # only the priced request: 1000 × $2 + 100 × $8
    assert _requests(settings)["mystery"] == (
        datetime(2026, 7, 1, 12),
        "acme",
        "acme-llm-9",
        None,
        1000,
        0,
        0,
        0,
        100,
        False,
        "standard",
        None,
    )


# --------------------------------------------------------------------------- csv and detection
def test_csv_with_the_canonical_columns(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "log.csv"
    path.write_text(
        "request_id,timestamp,model,input_tokens,cached_input_tokens,output_tokens,batch,cost_usd,user\n"
        "c1,2026-07-01T00:00:00Z,test-gpt,1000,200,100,false,0.0025,ann\n"
        "c2,2026-07-01T00:00:00Z,test-gpt,1000,0,100,true,,bob\n"
        "c3,2026-07-01T00:00:00Z,test-gpt,-5,0,100,false,,cid\n"
    )
    report = import_file(open_store(settings), path)
    assert (report.format, report.inserted, report.rejected) == ("csv", 2, 1)
    assert [(b.line, b.reason) for b in report.bad_lines] == [
        (4, "input_tokens: must be a whole number from 0 to 1e15, got -5")
    ]
    # c1: 800 × $2 + 200 × $0.5 + 100 × $8 = $0.0025; c2 (batch): 1000 × $1 + 100 × $4 = $0.0014
    assert rows(
        open_store(settings), "SELECT request_id, user_id, reported_cost_usd, cost_usd FROM requests ORDER BY 1"
    ) == [("c1", "ann", D("0.0025"), D("0.0025")), ("c2", "bob", None, D("0.0014"))]


def test_csv_rows_with_the_wrong_number_of_columns_are_bad_lines(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "semi.csv"
    path.write_text(
        "request_id;timestamp;model;input_tokens;output_tokens;feature\n"
        's1;2026-07-01T00:00:00Z;test-gpt;1000;100;"search; ranking"\n'
        "s2;2026-07-01T00:00:00Z;test-gpt;1000;100;x;EXTRA\n"
        "s3;2026-07-01T00:00:00Z;test-gpt;1000\n"
        "s4;2026-07-01T00:00:00Z;test-gpt;-1;100;\n"
        "s5;2026-07-01T00:00:00Z;test-gpt;1000;100;\n"
    )
    report = import_file(open_store(settings), path)
    assert (report.lines, report.inserted, report.rejected) == (5, 2, 3)
    assert [(b.line, b.reason.split(",")[0]) for b in report.bad_lines] == [
        (3, "more columns than the header"),
        (4, "fewer columns than the header"),
        (5, "input_tokens: must be a whole number from 0 to 1e15"),
    ]
    assert rows(open_store(settings), "SELECT request_id, feature FROM requests ORDER BY 1") == [
        ("s1", "search; ranking"),
        ("s5", None),
    ]


def test_a_csv_without_the_required_columns_cannot_be_read(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "wrong.csv"
    path.write_text("id,when,tokens\n1,2026-07-01,5\n")
    with pytest.raises(InvalidArgument, match="the CSV header lacks request_id, model, input_tokens"):
        import_file(open_store(settings), path)


def test_format_auto_detection_by_suffix_and_first_line(tmp_path: Path, settings: Settings) -> None:
    store = open_store(settings)
    canonical_file = write_lines(tmp_path / "a.log", ["", canonical("k1")])
    openai_file = write_lines(
        tmp_path / "b.ndjson",
        [
            {
                "id": "o1",
                "object": "chat.completion",
                "created": 1780000000,
                "model": "test-gpt",
                "usage": {"prompt_tokens": 1, "completion_tokens": 1},
            }
        ],
    )
    anthropic_file = write_lines(
        tmp_path / "c.jsonl",
        [{"custom_id": "x", "result": {"type": "succeeded", "message": {"id": "m1", "type": "message"}}}],
    )
    csv_file = tmp_path / "d.CSV"
    csv_file.write_text("request_id,timestamp,model,input_tokens,output_tokens\nv1,2026-07-01,test-gpt,1,1\n")
    unknown = write_lines(tmp_path / "e.jsonl", [{"hello": "world"}])
    assert [import_file(store, p).format for p in (canonical_file, openai_file, anthropic_file, csv_file)] == [
        "costhawk",
        "openai",
        "anthropic",
        "csv",
    ]
    with pytest.raises(InvalidArgument, match="cannot tell the format from the first line"):
        import_file(store, unknown)
    assert sorted(FORMATS) == ["anthropic", "costhawk", "csv", "openai", "otel"]


def test_an_empty_file_and_a_file_of_blank_lines_import_nothing(tmp_path: Path, settings: Settings) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    blanks = tmp_path / "blanks.jsonl"
    blanks.write_bytes(b"\n\r\n   \n")
    store = open_store(settings)
    reports = [import_file(store, p) for p in (empty, blanks)]
    assert [(r.lines, r.blank, r.inserted, r.rejected) for r in reports] == [(0, 0, 0, 0), (3, 3, 0, 0)]
    assert rows(store, "SELECT count(*) FROM imports") == [(2,)]


def test_a_byte_order_mark_is_not_part_of_the_first_line(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "bom.log"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(canonical("bom")).encode() + b"\n")
    report = import_file(open_store(settings), path)
    assert (report.format, report.inserted, report.rejected) == ("costhawk", 1, 0)


def test_a_new_format_plugs_into_the_registry(tmp_path: Path, settings: Settings) -> None:
    """The extension point: a format is data (fields, columns, checks) plus a detector."""
    spans = Format(
        name="spans-test",
        summary="flat spans with gen_ai attributes",
        reader="json_lines",
        fields=(
            Field("span_id", "text", (("span_id",),)),
            Field("ended", "epoch", (("end_s",),)),
            Field("model", "text", (("attributes", "gen_ai.response.model"), ("attributes", "gen_ai.request.model"))),
            Field("in_tokens", "count", (("attributes", "gen_ai.usage.input_tokens"),)),
            Field("out_tokens", "count", (("attributes", "gen_ai.usage.output_tokens"),)),
        ),
        columns={
            **dict.fromkeys(STAGING_OUT, "NULL"),
            "request_id": "span_id",
            "ts": "ended",
            "model": "model",
            "input_tokens": "in_tokens",
            "cached_input_tokens": "0",
            "cache_write_tokens": "0",
            "cache_write_1h_tokens": "0",
            "output_tokens": "out_tokens",
            "batch": "false",
        },
        detect=lambda first: isinstance(first, dict) and "span_id" in first,
    )
    register(spans)
    try:
        line = {
            "span_id": "s-1",
            "end_s": _epoch("2026-07-01T00:00:00"),
            "attributes": {
                "gen_ai.request.model": "test-gpt",
                "gen_ai.usage.input_tokens": 1000,
                "gen_ai.usage.output_tokens": 100,
            },
        }
        bad = {**line, "span_id": "s-2", "attributes": {**line["attributes"], "gen_ai.usage.output_tokens": -1}}
        report = import_file(open_store(settings), write_lines(tmp_path / "spans.jsonl", [line, bad]))
    finally:
        FORMATS.pop("spans-test")
    assert (report.format, report.inserted) == ("spans-test", 1)
    assert [(b.line, b.reason) for b in report.bad_lines] == [
        (2, "attributes.gen_ai.usage.output_tokens: must be a whole number from 0 to 1e15, got -1")
    ]
    # 1000 × $2 + 100 × $8 = 2800 → $0.0028
    assert rows(open_store(settings), "SELECT request_id, provider, cost_usd FROM requests") == [
        ("s-1", "openai", D("0.0028"))
    ]


# ------------------------------------------------------------------------------------ fast path
# Clean lines whose values read_json and the line path see differently unless handled: numbers
# as strings and whole doubles for tokens, small costs read_json renders in exponent form (1e-05),
# a numeric-string cost, offsets, flags as words, key material, a numeric request id, text with
# "e" in it, non-ASCII text.
CLEAN = [
    canonical("f1", cost_usd=0.00001),
    canonical("f2", input_tokens="1000", cached_input_tokens=200, output_tokens=100.0, cost_usd="0.25"),
    canonical("f3", timestamp="2026-07-01T12:00:00+02:00", batch="yes", latency_ms=12.5, status=200),
    canonical("f4", api_key_id="sk-proj-" + "Q7xT2mVb9LpRw4ZcN8yHs3Kd6FgJe1Ua" + "abcd", key_name="prod"),
    canonical("f5", model=" test-gpt ", provider="OpenAI", user="ü-user", feature="claude e-5", query_id="3e4f"),
    {**canonical("x"), "request_id": 12345, "cost_usd": 3.999999999999999},
    canonical("f7", cost_usd=0.1, service_tier="priority", cache_write_input_tokens=0),
]
ALL_COLUMNS = "* EXCLUDE (import_id)"


def test_a_clean_file_takes_the_fast_path_and_stores_exactly_what_the_line_path_stores(
    tmp_path: Path, settings: Settings
) -> None:
    plain = write_lines(tmp_path / "clean.jsonl", CLEAN)
    gzipped = tmp_path / "clean.jsonl.gz"  # gzip always takes the line path
    gzipped.write_bytes(gzip.compress(plain.read_bytes()))
    fast_store, line_store = store_at(settings, tmp_path / "fast.duckdb"), store_at(settings, tmp_path / "line.duckdb")
    fast, line = import_file(fast_store, plain), import_file(line_store, gzipped)
    assert (fast.fast, line.fast) == (True, False)
    assert (fast.lines, fast.inserted, fast.rejected, fast.blank) == (7, 7, 0, 0)
    assert (line.lines, line.inserted, line.cost_usd) == (fast.lines, fast.inserted, fast.cost_usd)
    for sql in (
        f"SELECT {ALL_COLUMNS} FROM requests ORDER BY request_id",
        "SELECT * EXCLUDE (updated_at) FROM api_keys",
    ):
        assert rows(fast_store, sql) == rows(line_store, sql)
    got = {r[0]: r[1:] for r in rows(fast_store, "SELECT request_id, reported_cost_usd, batch, tier FROM requests")}
    assert got["f1"][0] == D("0.00001")
    assert got["f2"][0] == D("0.25")
    assert got["12345"][0] == D("3.999999999999999")
    assert (got["f3"][1], got["f7"][2]) == (True, "priority")


@pytest.mark.parametrize(
    ("subtle", "bad"),
    [
        (canonical("s", cost_usd=True), "cost_usd: must be a number of US dollars ≥ 0, got true"),
        (canonical("s", input_tokens=1.5), "input_tokens: must be a whole number from 0 to 1e15, got 1.5"),
        (canonical("s", output_tokens=False), "output_tokens: must be a whole number from 0 to 1e15, got false"),
        (canonical("s", input_tokens=" 1000"), "input_tokens: must be a whole number from 0 to 1e15, got  1000"),
        ("\t", "not valid JSON"),
        ('{"request_id": "s"} {"request_id": "t"}', "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        (
            {**canonical("s"), "model": None},
            "model: missing (a non-empty string)",
        ),
    ],
    ids=["cost-true", "fraction", "false", "padded", "tab-line", "two-objects", "array", "null-model"],
)
def test_a_subtle_bad_value_sends_the_file_down_the_line_path_which_reports_it(
    tmp_path: Path, settings: Settings, subtle: object, bad: str
) -> None:
    lines = [canonical("g1"), canonical("g2"), subtle, canonical("g3")]
    report = import_file(open_store(settings), write_lines(tmp_path / "subtle.jsonl", lines))  # type: ignore[arg-type]
    assert report.fast is False
    assert (report.lines, report.inserted, report.rejected) == (4, 3, 1)
    assert [(b.line, b.reason) for b in report.bad_lines] == [(3, bad)]


@pytest.mark.parametrize(
    ("subtle", "stored"),
    [
        # Read_json drops blank lines: only the line path counts them.
        ("", None),
        ("   ", None),
        # A repeated id: only the line path knows which line came first.
        (canonical("g1", output_tokens=7), None),
        # Money the fast path cannot read exactly through read_json's double: $4 or more, or more
        # than 15 decimals. The line path reads the digits as written.
        (json.dumps(canonical("s"))[:-1] + ', "cost_usd": 12345678.123456789012345}', D("12345678.123456789012345")),
        (json.dumps(canonical("s"))[:-1] + ', "cost_usd": 0.1234567890123456789}', D("0.123456789012346")),
        # A number in exponent form where text is expected: the line path's rendering is kept.
        ({**canonical("s"), "query_id": 1e16}, "10000000000000000.0"),
        # A key twice (read_json refuses the line; the line path takes the first).
        (json.dumps(canonical("s"))[:-1] + ', "query_id": "first", "query_id": "second"}', "first"),
    ],
    ids=["blank", "spaces", "repeated-id", "big-cost", "long-cost", "exponent-text", "duplicate-key"],
)
def test_values_the_fast_path_cannot_vouch_for_take_the_line_path(
    tmp_path: Path, settings: Settings, subtle: object, stored: object
) -> None:
    lines = [canonical("g1"), canonical("g2"), subtle, canonical("g3")]
    report = import_file(open_store(settings), write_lines(tmp_path / "doubt.jsonl", lines))  # type: ignore[arg-type]
    assert (report.fast, report.lines, report.rejected) == (False, 4, 0)
    if isinstance(stored, Decimal):
        assert rows(open_store(settings), "SELECT reported_cost_usd FROM requests WHERE request_id = 's'") == [
            (stored,)
        ]
    elif stored is not None:
        assert rows(open_store(settings), "SELECT query_id FROM requests WHERE request_id = 's'") == [(stored,)]
    else:
        assert report.inserted + report.duplicates + report.blank == 4


# ------------------------------------------------------------------------------- integer pricing
def test_integer_pricing_gives_the_cost_functions_cents_on_random_rows(tmp_path: Path, settings: Settings) -> None:
    """The bulk import prices in femto-dollar BIGINTs; it must equal both the DECIMAL SQL and
    pricing.cost.cost on the packaged catalog (every model, period, tier and context band)."""
    catalog = load_catalog(None)
    store = Store(Database(str(tmp_path / "priced.duckdb")), catalog)
    rng = random.Random(20261127)
    picked: list[RequestRow] = []
    for i in range(3000):
        entry = rng.choice(catalog.models)
        day = datetime(2025, 1, 1) + timedelta(minutes=rng.randrange(0, 700 * 24 * 60))
        input_tokens = rng.choice([0, 1, 999, 150_000, 199_999, 200_001, 250_000, 1_000_000, 2_000_000])
        cached = rng.randrange(0, input_tokens + 1)
        write = rng.randrange(0, input_tokens - cached + 1)
        write_1h = rng.randrange(0, input_tokens - cached - write + 1)
        picked.append(
            RequestRow(
                request_id=f"r{i}",
                ts=day,
                model=entry.model,
                input_tokens=input_tokens,
                cached_input_tokens=cached,
                cache_write_tokens=write,
                cache_write_1h_tokens=write_1h,
                output_tokens=rng.choice([0, 7, 4_096, 100_000]),
                batch=rng.random() < 0.2,
                service_tier=rng.choice([None, "priority", "flex", "default"]),
            )
        )
    store.insert_requests(picked)
    with store.reading() as conn:
        assert pricing_sql.integer_pricing_exact(conn, 10**7)  # the packaged rates are whole femto-dollars
        assert not pricing_sql.integer_pricing_exact(conn, 10**15)  # 1e15 tokens x $600/M overflows BIGINT
    integer = dict(rows(store, "SELECT request_id, cost_usd FROM requests"))
    with store.writing() as conn:
        pricing_sql.reprice_all(conn)  # the DECIMAL(38, 18) arithmetic
    assert dict(rows(store, "SELECT request_id, cost_usd FROM requests")) == integer
    priced = 0
    for row in picked:
        if integer[row.request_id] is None:
            continue  # before the model's first price period (the store prices no such day)
        usage = TokenUsage(
            row.input_tokens,
            row.cached_input_tokens,
            row.cache_write_tokens,
            row.cache_write_1h_tokens,
            row.output_tokens,
        )
        entry = catalog.find(row.model)
        assert entry is not None
        exact = cost(entry, usage, at=row.ts, tier=service_tier(row.batch, row.service_tier)).total_usd
        assert integer[row.request_id] == exact, row
        priced += 1
    assert priced > 2500


def test_rows_too_large_for_integer_pricing_are_priced_in_decimals(tmp_path: Path, settings: Settings) -> None:
    huge = canonical("huge", input_tokens=10**15, cached_input_tokens=0, output_tokens=10**15)
    report = import_file(open_store(settings), write_lines(tmp_path / "huge.jsonl", [huge, canonical("small")]))
    # 1e15 × $2 + 1e15 × $8 per million = $2e9 + $8e9; small: 1000 × $2 + 100 × $8 = $0.0028
    assert report.cost_usd == D("10000000000.0028")


def test_gzipped_files_are_read(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "log.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(json.dumps(canonical(f"z{i}")) for i in range(3)) + "\n")
    report = import_file(open_store(settings), path)
    assert (report.format, report.inserted) == ("costhawk", 3)


# -------------------------------------------------------------------------------------- secrets
OPENAI_KEY = "sk-proj-" + "Q7xT2mVb9LpRw4ZcN8yHs3Kd6FgJe1Ua" + "abcd"
ANTHROPIC_KEY = "sk-ant-api03-" + "Zq8Rt5Yw2Xv7Nm4Lk1Jh6Gf3Dd9Ss0Aa" + "wxyz"
GOOGLE_KEY = "AIza" + "SyD3fGh5Jk7Lm9Np1Qr3St5Uv7Wx9Yz1Ab"


def test_key_material_never_reaches_the_database_file(tmp_path: Path, settings: Settings) -> None:
    lines = [
        canonical("s1", api_key_id=OPENAI_KEY, key_name="prod"),
        canonical("s2", api_key_id=OPENAI_KEY, key_name="prod"),
        canonical("s3", api_key_id=ANTHROPIC_KEY, provider="anthropic", model="test-claude"),
        canonical("s4", api_key_id=GOOGLE_KEY, provider="google", model="test-gemini"),
        canonical("s5", api_key_id="key_plain_id", key_name="sk-proj-pasted-key-as-a-name-000012345"),
    ]
    store = open_store(settings)
    import_file(store, write_lines(tmp_path / "k.jsonl", lines))
    import_file(store, write_lines(tmp_path / "k2.jsonl", [canonical("s6", api_key_id=OPENAI_KEY)]))

    def hashed(key: str) -> str:
        return "key_" + hashlib.sha256(key.encode()).hexdigest()[:16]

    assert rows(store, "SELECT request_id, api_key_id, key_name FROM requests ORDER BY 1") == [
        ("s1", hashed(OPENAI_KEY), "prod"),
        ("s2", hashed(OPENAI_KEY), "prod"),
        ("s3", hashed(ANTHROPIC_KEY), None),
        ("s4", hashed(GOOGLE_KEY), None),
        ("s5", "key_plain_id", "sk-proj-…2345"),
        ("s6", hashed(OPENAI_KEY), None),  # the same key gets the same id in every import
    ]
    assert rows(store, "SELECT provider, api_key_id, name, redacted_hint FROM api_keys ORDER BY 1") == [
        ("anthropic", hashed(ANTHROPIC_KEY), None, "sk-ant-…wxyz"),
        ("google", hashed(GOOGLE_KEY), None, "AIza…z1Ab"),
        ("openai", hashed(OPENAI_KEY), "prod", "sk-proj-…abcd"),
    ]
    data = b"".join(p.read_bytes() for p in Path(settings.db_path).parent.glob("costhawk.duckdb*"))
    assert data  # the file exists and was read
    for secret in (OPENAI_KEY, ANTHROPIC_KEY, GOOGLE_KEY, "sk-proj-pasted-key-as-a-name-000012345"):
        assert secret.encode() not in data
        assert secret[8:24].encode() not in data  # not even a fragment of the middle
    assert not list(Path(settings.db_path).parent.glob(".costhawk-import-*"))  # staging removed


def test_short_ids_that_merely_start_like_keys_are_kept(tmp_path: Path, settings: Settings) -> None:
    import_file(open_store(settings), write_lines(tmp_path / "s.jsonl", [canonical("k", api_key_id="sk-1234")]))
    assert rows(open_store(settings), "SELECT api_key_id FROM requests") == [("sk-1234",)]


# ------------------------------------------------------------------------------------------ CLI
def test_cli_prints_a_summary_per_file_and_exits_0_despite_bad_lines(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_lines(tmp_path / "bad.jsonl", BAD_FILE)
    assert main(["import", str(path)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert re.fullmatch(
        re.escape(
            f"{path} (costhawk): 10 lines: 2 requests inserted, 0 duplicates skipped, 6 bad lines rejected, "
            "2 blank lines skipped ["
        )
        + r"\d+\.\d s\]",
        lines[0],
    )
    # Each new request: 1000 × $2 + 100 × $8 = $0.0028; two of them $0.0056.
    assert lines[1] == "  cost of the new requests: $0.0056 for 2 priced requests"
    assert lines[2:] == [f"  line {n}: {reason}" for n, reason in BAD_EXPECTED]
    assert err == ""  # stderr is not a terminal: no progress bar


def test_cli_json_report(tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_lines(tmp_path / "bad.jsonl", BAD_FILE)
    assert main(["import", str(path), "--json", "--show-errors", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    (entry,) = report["files"]
    assert {k: entry[k] for k in ("format", "lines", "inserted", "duplicates", "rejected", "blank", "cost_usd")} == {
        "format": "costhawk",
        "lines": 10,
        "inserted": 2,
        "duplicates": 0,
        "rejected": 6,
        "blank": 2,
        "cost_usd": 0.0056,
    }
    assert entry["bad_lines"] == [{"line": n, "reason": r} for n, r in BAD_EXPECTED[:2]]
    assert sum(entry["rejected_by_reason"].values()) == 6


def test_cli_default_timestamp_and_format_flags(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    message = {
        "id": "msg_t",
        "type": "message",
        "model": "test-claude",
        "usage": {"input_tokens": 10, "output_tokens": 1},
    }
    path = write_lines(tmp_path / "claude.txt", [message])
    assert main(["import", str(path), "--format", "anthropic", "--default-timestamp", "2026-07-01T02:00:00+02:00"]) == 0
    assert rows(open_store(settings), "SELECT ts FROM requests") == [(datetime(2026, 7, 1),)]
    assert "1 request inserted" in capsys.readouterr().out


def test_cli_exits_1_with_one_line_for_a_file_it_cannot_read(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_lines(tmp_path / "good.jsonl", [canonical("g1")])
    missing = tmp_path / "missing.jsonl"
    assert main(["import", str(missing), str(good)]) == 1
    out, err = capsys.readouterr()
    assert err == f"costhawk-mcp import: {missing}: no such file\n"
    assert "1 request inserted" in out  # the other file was still imported


def test_cli_in_a_real_process(tmp_path: Path, settings: Settings) -> None:
    path = write_lines(tmp_path / "one.jsonl", [canonical("p1"), canonical("p2", input_tokens=-1)])
    done = run_cli("import", str(path), "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    entry = json.loads(done.stdout)["files"][0]
    assert (entry["inserted"], entry["rejected"], entry["bad_lines"][0]["line"]) == (1, 1, 2)
    again = run_cli("import", str(path))
    assert again.returncode == 0
    assert "0 requests inserted, 1 duplicate skipped, 1 bad line rejected" in again.stdout
