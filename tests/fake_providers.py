"""A fake OpenAI + Anthropic Admin API on 127.0.0.1, speaking both wire formats from generated data.

The data are per-hour usage records over dimensions (project or workspace, API key, model, batch,
service tier, context window). Usage buckets aggregate them at the requested width and grouping;
cost reports are derived from the same records with the fake's own price table (which mirrors
`tests/data/test_pricing.json`, so a correct sync reconciles to the cent), plus any planted
adjustments. The server implements what the provider notes say a client must cope with:

* pagination by buckets with opaque cursors that are bound to the query (a later page whose other
  parameters differ is a 400), `limit` bounds enforced per width, required parameters checked;
* both array encodings (`group_by[]=a` and repeated `group_by=a`) and single values;
* `null` for dimensions not grouped by, empty buckets (`results: []`), a partial last bucket when
  no end is sent, and optional unknown extra fields everywhere;
* scripted faults per path (429 with `retry-after` / `retry-after-ms`, 500, 529, dropped
  connections), a wrong-key 401 that echoes the key it was given (a leaky provider), a slow-down
  after N pages, and a log of every request for counting and comparing parameters.

OpenAI lives under `/openai/v1`, Anthropic under `/anthropic`; point the base URLs there. Run
`python tests/fake_providers.py --bench-days 90` to serve the benchmark data set from a subprocess.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import random
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

MILLION = Decimal(1_000_000)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
EPOCH = datetime(1970, 1, 1)

# The provider's own prices (USD per million tokens), mirroring tests/data/test_pricing.json's
# current period. OpenAI: tier -> (input, cached input, output); cache writes bill at input.
OPENAI_PRICES: dict[str, dict[str, tuple[Decimal, Decimal, Decimal]]] = {
    "test-gpt": {
        "standard": (Decimal("2"), Decimal("0.5"), Decimal("8")),
        "batch": (Decimal("1"), Decimal("0.5"), Decimal("4")),
        "priority": (Decimal("4"), Decimal("1"), Decimal("16")),
    },
    "test-gpt-mini": {
        "standard": (Decimal("0.2"), Decimal("0.05"), Decimal("0.8")),
        "batch": (Decimal("0.1"), Decimal("0.05"), Decimal("0.4")),
    },
    "test-embed": {"standard": (Decimal("0.02"), Decimal("0.02"), Decimal("0"))},
    # Billed by the provider but absent from the test catalog: reconciliation must name it.
    "test-mystery": {"standard": (Decimal("1"), Decimal("0.25"), Decimal("4"))},
}
OPENAI_UNIT_PRICES = {"images": Decimal("0.04"), "web_search_calls": Decimal("0.01")}
# Anthropic: (tier, long context) -> (input, cache read, 5m write, 1h write, output).
ANTHROPIC_PRICES: dict[str, dict[tuple[str, bool], tuple[Decimal, ...]]] = {
    "test-claude": {
        ("standard", False): tuple(Decimal(x) for x in ("3", "0.3", "3.75", "6", "15")),
        ("batch", False): tuple(Decimal(x) for x in ("1.5", "0.15", "1.875", "3", "7.5")),
        ("standard", True): tuple(Decimal(x) for x in ("6", "0.6", "7.5", "12", "22.5")),
        ("batch", True): tuple(Decimal(x) for x in ("3", "0.3", "3.75", "6", "11.25")),
    },
}
WEB_SEARCH_CENTS = Decimal(1)  # $10 per 1000 searches

OPENAI_DIMS = {
    "completions": ("project_id", "user_id", "api_key_id", "model", "batch", "service_tier"),
    "embeddings": ("project_id", "user_id", "api_key_id", "model"),
    "moderations": ("project_id", "user_id", "api_key_id", "model"),
    "images": ("project_id", "user_id", "api_key_id", "model", "size", "source"),
    "audio_speeches": ("project_id", "user_id", "api_key_id", "model"),
    "audio_transcriptions": ("project_id", "user_id", "api_key_id", "model"),
    "vector_stores": ("project_id",),
    "code_interpreter_sessions": ("project_id",),
    "file_search_calls": ("project_id", "user_id", "api_key_id", "vector_store_id"),
    "web_search_calls": ("project_id", "user_id", "api_key_id", "model", "context_level"),
}
ANTHROPIC_DIMS = (
    "api_key_id",
    "workspace_id",
    "model",
    "service_tier",
    "context_window",
    "inference_geo",
    "account_id",
    "service_account_id",
)
USAGE_LIMITS = {"1m": (60, 1440), "1h": (24, 168), "1d": (7, 31)}
WIDTHS = {"1m": timedelta(minutes=1), "1h": HOUR, "1d": DAY}
OBJECT_NAMES = {"file_search_calls": "file_searches", "web_search_calls": "web_searches"}


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def epoch(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds())


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class OpenAIUsage:
    """One hour of OpenAI usage for one dimension tuple. `input_tokens` counts every prompt token."""

    hour: datetime
    model: str | None = "test-gpt"
    project_id: str | None = "proj_a"
    api_key_id: str | None = "key_a"
    user_id: str | None = None
    batch: bool = False
    service_tier: str = "default"
    input_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    requests: int = 1
    kind: str = "completions"
    units: int = 0  # images, characters, calls... for the kinds not priced per token
    size: str | None = None
    source: str | None = None
    context_level: str | None = None

    @property
    def tier(self) -> str:
        if self.batch:
            return "batch"
        return "priority" if self.service_tier == "priority" else "standard"


@dataclass(frozen=True)
class AnthropicUsage:
    """One hour of Anthropic usage for one dimension tuple."""

    hour: datetime
    model: str = "test-claude-20260101"
    api_key_id: str | None = "apikey_a"
    workspace_id: str | None = None
    service_tier: str = "standard"
    context_window: str = "0-200k"
    inference_geo: str = "global"
    uncached: int = 0
    cache_read: int = 0
    write_5m: int = 0
    write_1h: int = 0
    output: int = 0
    web_search: int = 0

    @property
    def base_model(self) -> str:
        return self.model.removesuffix("-20260101")


@dataclass(frozen=True)
class CostAdjustment:
    """A cost-report line the usage does not explain (a planted discrepancy or a non-token charge)."""

    day: datetime
    amount_usd: Decimal
    project_id: str | None = None  # OpenAI project, or Anthropic workspace
    line_item: str = "unexplained adjustment"  # OpenAI line item, or Anthropic description
    cost_type: str = "tokens"  # Anthropic: tokens, web_search, code_execution, session_usage
    quantity_unit: str | None = None


@dataclass
class Fault:
    """A scripted failure for requests whose path contains `path`, `times` times."""

    path: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    drop_connection: bool = False


@dataclass
class Keys:
    """Names the fake knows: OpenAI projects and keys, Anthropic keys and workspaces."""

    openai_projects: list[tuple[str, str, bool]] = field(
        default_factory=lambda: [("proj_a", "Search backend", False), ("proj_b", "Media tools", True)]
    )
    # (id, name, project, redacted value, active)
    openai_keys: list[tuple[str, str, str, str, bool]] = field(
        default_factory=lambda: [
            ("key_a", "search-prod", "proj_a", "sk-pro...aaaa", True),
            ("key_b", "alice laptop", "proj_a", "sk-pro...bbbb", True),
            ("key_c", "media batch", "proj_b", "sk-pro...cccc", False),
        ]
    )
    # (id, name, workspace, hint, status)
    anthropic_keys: list[tuple[str, str, str | None, str, str]] = field(
        default_factory=lambda: [
            ("apikey_a", "claude-prod", "wrkspc_a", "sk-ant-api03-AAA...aaAA", "active"),
            ("apikey_b", "claude-batch", None, "sk-ant-api03-BBB...bbBB", "inactive"),
        ]
    )
    anthropic_workspaces: list[tuple[str, str, bool]] = field(
        default_factory=lambda: [("wrkspc_a", "Research", False), ("wrkspc_old", "Old", True)]
    )


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


def _cursor(offset: int, fingerprint: str) -> str:
    raw = json.dumps({"o": offset, "q": fingerprint}).encode()
    return "page_" + base64.b64encode(raw).decode()  # '+', '/' and '=' exercise URL encoding


def _uncursor(cursor: str, fingerprint: str) -> int:
    try:
        data = json.loads(base64.b64decode(cursor.removeprefix("page_")))
        offset, bound = int(data["o"]), str(data["q"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ApiError(400, f"invalid page cursor: {cursor!r}") from exc
    if bound != fingerprint:
        raise ApiError(400, "page cursor was issued for a different query: keep every other parameter unchanged")
    return offset


class Query:
    """A parsed query string accepting both array encodings."""

    def __init__(self, raw: str) -> None:
        self.values = parse_qs(raw, keep_blank_values=True)

    def list(self, name: str) -> list[str]:
        return [*self.values.get(f"{name}[]", []), *self.values.get(name, [])]

    def one(self, name: str) -> str | None:
        found = self.list(name)
        return found[-1] if found else None

    def fingerprint(self) -> str:
        items = sorted((k.removesuffix("[]"), tuple(v)) for k, v in self.values.items() if k != "page")
        return hashlib.sha256(repr(items).encode()).hexdigest()[:16]


class FakeProviders:
    """State and HTTP server of the fake APIs."""

    def __init__(
        self,
        *,
        openai_key: str = "sk-admin-fake-openai-0123456789",
        anthropic_key: str = "sk-ant-admin01-fake-anthropic-0123456789",
        now: datetime | None = None,
    ) -> None:
        self.openai_key = openai_key
        self.anthropic_key = anthropic_key
        self.now = now or utcnow()
        self.openai: list[OpenAIUsage] = []
        self.anthropic: list[AnthropicUsage] = []
        self.adjustments: dict[str, list[CostAdjustment]] = {"openai": [], "anthropic": []}
        self.keys = Keys()
        self.names_page_size = 1000
        self.extra_fields = False
        self.repeat_cursor = False
        self.faults: list[Fault] = []
        self.slow_after_pages: int | None = None
        self.slow_seconds = 0.0
        self.pages_served = 0
        # Slowing down applies per endpoint: each serves `slow_after_pages` pages at full speed, so
        # which endpoints answer first (it varies with load) cannot decide whether rows get written.
        self.pages_by_path: dict[str, int] = {}
        self.log: list[tuple[str, str]] = []  # (path, raw query)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._index: dict[str, dict[datetime, list[Any]]] | None = None
        self._stopping = threading.Event()

    # ------------------------------------------------------------------ lifecycle
    def start(self, port: int = 0) -> FakeProviders:
        handler = _make_handler(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-providers", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wake any slowed-down response
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/openai/v1"

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/anthropic"

    def env(self) -> dict[str, str]:
        """Environment variables pointing costhawk at this fake with the right keys."""
        return {
            "OPENAI_ADMIN_KEY": self.openai_key,
            "ANTHROPIC_ADMIN_KEY": self.anthropic_key,
            "COSTHAWK_OPENAI_BASE_URL": self.openai_url,
            "COSTHAWK_ANTHROPIC_BASE_URL": self.anthropic_url,
        }

    def requests_to(self, path_part: str) -> list[Query]:
        with self._lock:
            return [Query(q) for p, q in self.log if path_part in p]

    def data_changed(self) -> None:
        self._index = None

    # ------------------------------------------------------------------ oracles
    def openai_cost_lines(self, record: OpenAIUsage) -> Iterator[tuple[str, Decimal, int, str | None]]:
        """(line item, dollars, quantity, unit) the provider bills for one record."""
        if record.kind in OPENAI_UNIT_PRICES:
            name = record.model if record.kind == "images" else "web search tool calls"
            unit = "images" if record.kind == "images" else None
            yield str(name), record.units * OPENAI_UNIT_PRICES[record.kind], record.units, unit
            return
        if record.kind not in ("completions", "embeddings") or record.model is None:
            return
        prices = OPENAI_PRICES[record.model.removesuffix("-2026-01-01")]
        rate_in, rate_cached, rate_out = prices.get(record.tier, prices["standard"])
        prefix = "" if record.tier == "standard" else f"{record.tier} "
        uncached = record.input_tokens - record.cached_tokens
        for label, count, rate in (
            ("input", uncached, rate_in),
            ("cached input", record.cached_tokens, rate_cached),
            ("output", record.output_tokens, rate_out),
        ):
            if count:
                yield f"{record.model}, {prefix}{label}", count * rate / MILLION, count, "tokens"

    def anthropic_cost_lines(self, record: AnthropicUsage) -> Iterator[tuple[str, str, str | None, Decimal]]:
        """(cost type, description, token type, cents) the provider bills for one record (never priority)."""
        if record.service_tier == "priority":
            return
        long_context = record.context_window == "200k-1M"
        prices = ANTHROPIC_PRICES[record.base_model][(record.service_tier, long_context)]
        counts = (record.uncached, record.cache_read, record.write_5m, record.write_1h, record.output)
        labels = (
            ("uncached_input_tokens", "Input Tokens"),
            ("cache_read_input_tokens", "Cache Read"),
            ("cache_creation.ephemeral_5m_input_tokens", "Cache Write (5m)"),
            ("cache_creation.ephemeral_1h_input_tokens", "Cache Write (1h)"),
            ("output_tokens", "Output Tokens"),
        )
        for (token_type, label), count, price in zip(labels, counts, prices, strict=True):
            if count:
                yield "tokens", f"{record.base_model} Usage - {label}", token_type, count * price / MILLION * 100
        if record.web_search:
            yield "web_search", "Web Search Usage", None, record.web_search * WEB_SEARCH_CENTS

    def expected_cost(self, provider: str, start: datetime, end: datetime) -> Decimal:
        """Dollars the provider bills for token usage in [start, end) (no adjustments)."""
        total = Decimal(0)
        if provider == "openai":
            for r in self.openai:
                if start <= r.hour < end and r.kind in ("completions", "embeddings"):
                    total += sum((amount for _, amount, _, _ in self.openai_cost_lines(r)), Decimal(0))
        else:
            for a in self.anthropic:
                if start <= a.hour < end:
                    total += (
                        sum(
                            (cents for kind, _, _, cents in self.anthropic_cost_lines(a) if kind == "tokens"),
                            Decimal(0),
                        )
                        / 100
                    )
        return total

    # ------------------------------------------------------------------ request handling
    def _records_by_hour(self, provider: str) -> dict[datetime, list[Any]]:
        if self._index is None:
            index: dict[str, dict[datetime, list[Any]]] = {"openai": defaultdict(list), "anthropic": defaultdict(list)}
            for o in self.openai:
                index["openai"][o.hour].append(o)
            for a in self.anthropic:
                index["anthropic"][a.hour].append(a)
            self._index = index
        return self._index[provider]

    def _buckets(self, start: datetime, end: datetime | None, width: timedelta) -> list[tuple[datetime, datetime]]:
        stop = min(end, self.now) if end is not None else self.now
        buckets = []
        cursor = start
        while cursor < stop:
            if width == DAY:
                boundary = cursor.replace(hour=0, minute=0, second=0, microsecond=0) + DAY
            elif width == HOUR:
                boundary = floor_hour(cursor) + HOUR
            else:
                boundary = cursor.replace(second=0, microsecond=0) + width
            buckets.append((cursor, min(boundary, stop) if end is None else boundary))
            cursor = boundary
        return buckets

    def _in_bucket(self, provider: str, start: datetime, end: datetime) -> list[Any]:
        index = self._records_by_hour(provider)
        found: list[Any] = []
        hour = floor_hour(start)
        while hour < end:
            if hour >= start:
                found.extend(index.get(hour, ()))
            hour += HOUR
        return found

    def _paginate(
        self, query: Query, buckets: list[tuple[datetime, datetime]], default: int, maximum: int
    ) -> tuple[list[tuple[datetime, datetime]], bool, str | None]:
        raw_limit = query.one("limit")
        try:
            limit = int(raw_limit) if raw_limit is not None else default
        except ValueError as exc:
            raise ApiError(400, f"limit: expected an integer, got {raw_limit!r}") from exc
        if not 1 <= limit <= maximum:
            raise ApiError(400, f"limit: must be between 1 and {maximum} for this bucket width, got {limit}")
        fingerprint = query.fingerprint()
        cursor = query.one("page")
        offset = _uncursor(cursor, fingerprint) if cursor else 0
        chunk = buckets[offset : offset + limit]
        if self.repeat_cursor:  # a broken API: always "more", always the first cursor again
            return chunk, True, _cursor(limit, fingerprint)
        more = offset + limit < len(buckets)
        return chunk, more, _cursor(offset + limit, fingerprint) if more else None

    def _extra(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self.extra_fields:
            payload["x_future_field"] = {"nested": [1, 2, {"deep": None}], "flag": True}
        return payload

    def openai_usage(self, kind: str, query: Query) -> dict[str, Any]:
        if kind not in OPENAI_DIMS:
            raise ApiError(404, f"unknown usage kind {kind!r}")
        width_name = query.one("bucket_width") or "1d"
        if width_name not in WIDTHS:
            raise ApiError(400, f"Invalid value for 'bucket_width': expected one of 1m, 1h, 1d, got {width_name!r}")
        start_raw = query.one("start_time")
        if start_raw is None:
            raise ApiError(400, "start_time is required")
        end_raw = query.one("end_time")
        start = EPOCH + timedelta(seconds=int(start_raw))
        end = EPOCH + timedelta(seconds=int(end_raw)) if end_raw else None
        dims = OPENAI_DIMS[kind]
        group_by = query.list("group_by")
        for g in group_by:
            if g not in dims:
                raise ApiError(400, f"Invalid value for 'group_by': {g!r} is not allowed for {kind}")
        default, maximum = USAGE_LIMITS[width_name]
        buckets, more, cursor = self._paginate(query, self._buckets(start, end, WIDTHS[width_name]), default, maximum)
        data = []
        for b_start, b_end in buckets:
            groups: dict[tuple[Any, ...], dict[str, int]] = {}
            for r in self._in_bucket("openai", b_start, b_end):
                if r.kind != kind:
                    continue
                key = tuple(getattr(r, d, None) if d in group_by else None for d in dims)
                sums = groups.setdefault(key, defaultdict(int))
                if kind in ("completions",):
                    sums["input_tokens"] += r.input_tokens
                    sums["input_cached_tokens"] += r.cached_tokens
                    sums["input_cache_write_tokens"] += r.cache_write_tokens
                    sums["output_tokens"] += r.output_tokens
                    sums["num_model_requests"] += r.requests
                elif kind in ("embeddings", "moderations"):
                    sums["input_tokens"] += r.input_tokens
                    sums["num_model_requests"] += r.requests
                else:
                    unit = {
                        "images": "images",
                        "audio_speeches": "characters",
                        "audio_transcriptions": "seconds",
                        "vector_stores": "usage_bytes",
                        "code_interpreter_sessions": "num_sessions",
                        "file_search_calls": "num_requests",
                        "web_search_calls": "num_requests",
                    }[kind]
                    sums[unit] += r.units
                    if kind not in ("vector_stores", "code_interpreter_sessions", "file_search_calls"):
                        sums["num_model_requests"] += r.requests
            results = []
            for key in sorted(groups, key=repr):
                sums = groups[key]
                result: dict[str, Any] = {"object": f"organization.usage.{OBJECT_NAMES.get(kind, kind)}.result"}
                if kind == "completions":
                    uncached = sums["input_tokens"] - sums["input_cached_tokens"] - sums["input_cache_write_tokens"]
                    result.update(
                        input_tokens=sums["input_tokens"],
                        input_cached_tokens=sums["input_cached_tokens"],
                        input_cache_write_tokens=sums["input_cache_write_tokens"],
                        input_uncached_tokens=uncached,
                        output_tokens=sums["output_tokens"],
                        input_text_tokens=uncached,
                        output_text_tokens=sums["output_tokens"],
                        input_cached_text_tokens=sums["input_cached_tokens"],
                        input_audio_tokens=0,
                        input_cached_audio_tokens=0,
                        output_audio_tokens=0,
                        input_image_tokens=0,
                        input_cached_image_tokens=0,
                        output_image_tokens=0,
                        num_model_requests=sums["num_model_requests"],
                    )
                else:
                    result.update(sums)
                result.update(dict(zip(dims, key, strict=True)))
                results.append(self._extra(result))
            data.append(
                self._extra(
                    {"object": "bucket", "start_time": epoch(b_start), "end_time": epoch(b_end), "results": results}
                )
            )
        return self._extra({"object": "page", "data": data, "has_more": more, "next_page": cursor})

    def openai_costs(self, query: Query) -> dict[str, Any]:
        width_name = query.one("bucket_width") or "1d"
        if width_name != "1d":
            raise ApiError(400, "Invalid value for 'bucket_width': only 1d is supported")
        start_raw = query.one("start_time")
        if start_raw is None:
            raise ApiError(400, "start_time is required")
        end_raw = query.one("end_time")
        start = EPOCH + timedelta(seconds=int(start_raw))
        end = EPOCH + timedelta(seconds=int(end_raw)) if end_raw else None
        group_by = query.list("group_by")
        for g in group_by:
            if g not in ("project_id", "line_item", "api_key_id"):
                raise ApiError(400, f"Invalid value for 'group_by': {g!r}")
        buckets, more, cursor = self._paginate(query, self._buckets(start, end, DAY), 7, 180)
        data = []
        for b_start, b_end in buckets:
            lines: dict[tuple[Any, ...], list[Any]] = {}

            for r in self._in_bucket("openai", b_start, b_end):
                for item, amount, qty, unit in self.openai_cost_lines(r):
                    _add_line(lines, group_by, (r.project_id, r.api_key_id, item), amount, qty, unit)
            for adj in self.adjustments["openai"]:
                if b_start <= adj.day < b_end:
                    _add_line(
                        lines, group_by, (adj.project_id, None, adj.line_item), adj.amount_usd, 0, adj.quantity_unit
                    )
            results = []
            for key in sorted(lines, key=repr):
                amount, qty, unit = lines[key]
                result = {
                    "object": "organization.costs.result",
                    "amount": {"value": float(amount), "currency": "usd"},
                    "line_item": key[2],
                    "project_id": key[0],
                    "api_key_id": key[1],
                    "quantity": qty if "line_item" in group_by else None,
                    "quantity_unit": unit,
                }
                if self.extra_fields:
                    result["organization_id"] = "org-fake"
                results.append(self._extra(result))
            data.append(
                self._extra(
                    {"object": "bucket", "start_time": epoch(b_start), "end_time": epoch(b_end), "results": results}
                )
            )
        return self._extra({"object": "page", "data": data, "has_more": more, "next_page": cursor})

    def _anthropic_window(self, query: Query) -> tuple[datetime, datetime | None]:
        start_raw = query.one("starting_at")
        if start_raw is None:
            raise ApiError(400, "starting_at: field required")
        end_raw = query.one("ending_at")

        def parse(text: str) -> datetime:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc).replace(tzinfo=None)

        return parse(start_raw), parse(end_raw) if end_raw else None

    def anthropic_usage(self, query: Query) -> dict[str, Any]:
        width_name = query.one("bucket_width") or "1d"
        if width_name not in WIDTHS:
            raise ApiError(400, f"bucket_width: invalid value {width_name!r}")
        start, end = self._anthropic_window(query)
        group_by = query.list("group_by")
        for g in group_by:
            if g not in (*ANTHROPIC_DIMS, "speed"):
                raise ApiError(400, f"group_by: invalid value {g!r}")
        default, maximum = USAGE_LIMITS[width_name]
        buckets, more, cursor = self._paginate(query, self._buckets(start, end, WIDTHS[width_name]), default, maximum)
        data = []
        for b_start, b_end in buckets:
            groups: dict[tuple[Any, ...], list[int]] = {}
            for r in self._in_bucket("anthropic", b_start, b_end):
                key = tuple(getattr(r, d, None) if d in group_by else None for d in ANTHROPIC_DIMS)
                sums = groups.setdefault(key, [0] * 6)
                for i, value in enumerate((r.uncached, r.cache_read, r.write_5m, r.write_1h, r.output, r.web_search)):
                    sums[i] += value
            results = []
            for key in sorted(groups, key=repr):
                u, read, w5, w1, out, web = groups[key]
                result = dict(zip(ANTHROPIC_DIMS, key, strict=True))
                result.update(
                    uncached_input_tokens=u,
                    cache_read_input_tokens=read,
                    cache_creation={"ephemeral_5m_input_tokens": w5, "ephemeral_1h_input_tokens": w1},
                    output_tokens=out,
                    server_tool_use={"web_search_requests": web},
                )
                results.append(self._extra(result))
            data.append(self._extra({"starting_at": rfc3339(b_start), "ending_at": rfc3339(b_end), "results": results}))
        return self._extra({"data": data, "has_more": more, "next_page": cursor})

    def anthropic_costs(self, query: Query) -> dict[str, Any]:
        start, end = self._anthropic_window(query)
        group_by = query.list("group_by")
        for g in group_by:
            if g not in ("workspace_id", "description"):
                raise ApiError(400, f"group_by: invalid value {g!r}")
        buckets, more, cursor = self._paginate(query, self._buckets(start, end, DAY), 7, 31)
        by_desc = "description" in group_by
        by_space = "workspace_id" in group_by
        data = []
        for b_start, b_end in buckets:
            lines: dict[tuple[Any, ...], Decimal] = {}
            for r in self._in_bucket("anthropic", b_start, b_end):
                for kind, description, token_type, cents in self.anthropic_cost_lines(r):
                    tokens = kind == "tokens"
                    key = (
                        r.workspace_id if by_space else None,
                        description if by_desc else None,
                        kind if by_desc else None,
                        r.base_model if by_desc and tokens else None,
                        token_type if by_desc else None,
                        r.service_tier if by_desc and tokens else None,
                        r.context_window if by_desc and tokens else None,
                        "not_available" if by_desc and tokens else None,
                    )
                    lines[key] = lines.get(key, Decimal(0)) + cents
            for adj in self.adjustments["anthropic"]:
                if b_start <= adj.day < b_end:
                    key = (
                        adj.project_id if by_space else None,
                        adj.line_item if by_desc else None,
                        adj.cost_type if by_desc else None,
                        None,
                        None,
                        None,
                        None,
                        None,
                    )
                    lines[key] = lines.get(key, Decimal(0)) + adj.amount_usd * 100
            results = []
            for key in sorted(lines, key=repr):
                space, description, kind, model, token_type, tier, window, geo = key
                results.append(
                    self._extra(
                        {
                            "amount": format(lines[key].normalize(), "f"),
                            "currency": "USD",
                            "workspace_id": space,
                            "description": description,
                            "cost_type": kind,
                            "model": model,
                            "token_type": token_type,
                            "service_tier": tier,
                            "context_window": window,
                            "inference_geo": geo,
                        }
                    )
                )
            data.append(self._extra({"starting_at": rfc3339(b_start), "ending_at": rfc3339(b_end), "results": results}))
        return self._extra({"data": data, "has_more": more, "next_page": cursor})

    def _list_page(self, items: list[dict[str, Any]], query: Query, cursor_name: str, maximum: int) -> dict[str, Any]:
        limit = int(query.one("limit") or 20)
        if not 1 <= limit <= maximum:
            raise ApiError(400, f"limit: must be between 1 and {maximum}")
        limit = min(limit, self.names_page_size)
        after = query.one(cursor_name)
        ids = [item["id"] for item in items]
        offset = ids.index(after) + 1 if after in ids else 0
        chunk = items[offset : offset + limit]
        return self._extra(
            {
                "object": "list",
                "data": chunk,
                "first_id": chunk[0]["id"] if chunk else None,
                "last_id": chunk[-1]["id"] if chunk else None,
                "has_more": offset + limit < len(items),
            }
        )

    def route(self, path: str, query: Query) -> dict[str, Any]:
        if path.startswith("/openai/v1/organization/"):
            rest = path.removeprefix("/openai/v1/organization/")
            if rest.startswith("usage/"):
                return self.openai_usage(rest.removeprefix("usage/"), query)
            if rest == "costs":
                return self.openai_costs(query)
            if rest == "projects":
                archived = query.one("include_archived") == "true"
                items = [
                    {
                        "id": pid,
                        "object": "organization.project",
                        "name": name,
                        "created_at": 1700000000,
                        "archived_at": 1750000000 if gone else None,
                        "status": "archived" if gone else "active",
                    }
                    for pid, name, gone in self.keys.openai_projects
                    if archived or not gone
                ]
                return self._list_page(items, query, "after", 100)
            if rest.startswith("projects/") and rest.endswith("/api_keys"):
                project = rest.split("/")[1]
                access = query.one("owner_project_access") or "active"
                items = [
                    {
                        "object": "organization.project.api_key",
                        "id": kid,
                        "name": name,
                        "redacted_value": hint,
                        "created_at": 1700000000,
                        "last_used_at": None,
                        "owner_project_access": "active" if active else "inactive",
                        "owner": {"type": "user", "user": {"id": "user-x", "name": "X", "email": "x@example.com"}},
                    }
                    for kid, name, pid, hint, active in self.keys.openai_keys
                    if pid == project and (access == "any" or active == (access == "active"))
                ]
                return self._list_page(items, query, "after", 100)
        if path.startswith("/anthropic/v1/organizations/"):
            rest = path.removeprefix("/anthropic/v1/organizations/")
            if rest == "usage_report/messages":
                return self.anthropic_usage(query)
            if rest == "cost_report":
                return self.anthropic_costs(query)
            if rest == "api_keys":
                items = [
                    {
                        "id": kid,
                        "type": "api_key",
                        "name": name,
                        "partial_key_hint": hint,
                        "status": status,
                        "workspace_id": space,
                        "created_at": "2026-01-02T03:04:05.123456Z",
                        "created_by": None,
                        "expires_at": None,
                        "principal": None,
                    }
                    for kid, name, space, hint, status in self.keys.anthropic_keys
                ]
                return self._list_page(items, query, "after_id", 1000)
            if rest == "workspaces":
                archived = query.one("include_archived") == "true"
                items = [
                    {
                        "id": wid,
                        "type": "workspace",
                        "name": name,
                        "created_at": "2026-01-01T00:00:00Z",
                        "archived_at": "2026-06-01T00:00:00Z" if gone else None,
                        "display_color": "#6C5BB9",
                    }
                    for wid, name, gone in self.keys.anthropic_workspaces
                    if archived or not gone
                ]
                return self._list_page(items, query, "after_id", 1000)
        raise ApiError(404, f"no route for {path}", "not_found_error")


def _add_line(
    lines: dict[tuple[Any, ...], list[Any]],
    group_by: list[str],
    dims: tuple[str | None, str | None, str],
    amount: Decimal,
    qty: int,
    unit: str | None,
) -> None:
    """Add an OpenAI cost line to its (project, key, line item) group, as far as grouped by."""
    project, key_id, item = dims
    key = (
        project if "project_id" in group_by else None,
        key_id if "api_key_id" in group_by else None,
        item if "line_item" in group_by else None,
    )
    entry = lines.setdefault(key, [Decimal(0), 0, unit if "line_item" in group_by else None])
    entry[0] += amount
    entry[1] += qty


def _make_handler(fake: FakeProviders) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            body = json.dumps(payload, separators=(",", ":")).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _error(
            self, anthropic: bool, status: int, message: str, kind: str, headers: dict[str, str] | None = None
        ) -> None:
            if anthropic:
                payload = {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}
            else:
                payload = {"error": {"message": message, "type": kind, "param": None, "code": None}}
            self._send(status, payload, headers)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path, query = parts.path, Query(parts.query)
            anthropic = path.startswith("/anthropic")
            with fake._lock:
                fake.log.append((path, parts.query))
                fault = next((f for f in fake.faults if f.path in path and f.times > 0), None)
                if fault is not None:
                    fault.times -= 1
            if anthropic:
                given = self.headers.get("x-api-key")
                if given != fake.anthropic_key or not self.headers.get("anthropic-version"):
                    # A leaky provider: echo the key it got, so the client has to scrub it.
                    self._error(True, 401, f"invalid x-api-key {given}", "authentication_error")
                    return
            else:
                auth = self.headers.get("authorization", "")
                if auth != f"Bearer {fake.openai_key}":
                    self._error(
                        False,
                        401,
                        f"Incorrect API key provided: {auth.removeprefix('Bearer ')}.",
                        "invalid_request_error",
                    )
                    return
            if fault is not None:
                if fault.drop_connection:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                kind = {429: "rate_limit_error", 529: "overloaded_error"}.get(fault.status, "api_error")
                self._error(anthropic, fault.status, f"injected {fault.status}", kind, fault.headers)
                return
            try:
                payload = fake.route(path, query)
            except ApiError as exc:
                self._error(anthropic, exc.status, exc.message, exc.kind)
                return
            if "data" in payload and payload.get("object") != "list":
                with fake._lock:
                    fake.pages_served += 1
                    served = fake.pages_by_path[path] = fake.pages_by_path.get(path, 0) + 1
                    slow = fake.slow_after_pages is not None and served > fake.slow_after_pages
                if slow:
                    fake._stopping.wait(fake.slow_seconds)
            try:
                self._send(200, payload)
            except (BrokenPipeError, ConnectionResetError):
                return  # the client went away (a killed sync)

    return Handler


# ---------------------------------------------------------------------- generated data sets
OPENAI_COMBO_POOL = [
    (project, key, model, batch, tier)
    for project, keys in (("proj_a", ("key_a", "key_b")), ("proj_b", ("key_c",)), ("proj_c", ("key_d", "key_e")))
    for key in keys
    for model in ("test-gpt", "test-gpt-mini", "test-gpt-2026-01-01")
    for batch, tier in ((False, "default"), (True, "default"), (False, "priority"))
]
ANTHROPIC_COMBO_POOL = [
    (key, space, model, tier, window)
    for key, space in (("apikey_a", "wrkspc_a"), ("apikey_b", None), ("apikey_c", "wrkspc_a"), (None, None))
    for model in ("test-claude", "test-claude-20260101")
    for tier in ("standard", "batch", "priority")
    for window in ("0-200k", "200k-1M")
]


def generate(fake: FakeProviders, start: datetime, hours: int, combos: int = 50, seed: int = 7) -> None:
    """Deterministic hourly records: about `combos` dimension tuples per hour and provider, some hours
    and tuples empty, every figure reproducible from `seed`."""
    rng = random.Random(seed)
    openai_pool = OPENAI_COMBO_POOL[:combos]
    anthropic_pool = ANTHROPIC_COMBO_POOL[:combos]
    for h in range(hours):
        hour = start + h * HOUR
        if h % 29 == 5:  # an hour without any traffic: empty buckets
            continue
        for i, (project, key, model, batch, tier) in enumerate(openai_pool):
            if (h + i) % 11 == 0:
                continue
            prompt = rng.randrange(1_000, 200_000)
            cached = rng.randrange(0, prompt // 2)
            fake.openai.append(
                OpenAIUsage(
                    hour,
                    model,
                    project,
                    key,
                    batch=batch,
                    service_tier=tier,
                    input_tokens=prompt,
                    cached_tokens=cached,
                    output_tokens=rng.randrange(100, 20_000),
                    requests=rng.randrange(1, 50),
                )
            )
        for i, (key, space, model, tier, window) in enumerate(anthropic_pool):
            if (h + i) % 13 == 0:
                continue
            fake.anthropic.append(
                AnthropicUsage(
                    hour,
                    model,
                    key,
                    space,
                    tier,
                    window,
                    uncached=rng.randrange(1_000, 100_000),
                    cache_read=rng.randrange(0, 300_000),
                    write_5m=rng.randrange(0, 20_000),
                    write_1h=rng.randrange(0, 5_000),
                    output=rng.randrange(100, 10_000),
                    web_search=rng.randrange(0, 3) if i == 0 else 0,
                )
            )
    fake.data_changed()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the fake provider APIs with a generated data set.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--combos", type=int, default=50)
    args = parser.parse_args()
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    fake = FakeProviders(now=now)
    start = (now - timedelta(days=args.days)).replace(hour=0)
    generate(fake, start, int((now - start) / HOUR), args.combos)
    fake.start(args.port)
    print(json.dumps({"port": fake.port, "start": start.isoformat(), "now": now.isoformat(), **fake.env()}), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()
        sys.exit(0)


if __name__ == "__main__":
    main()
