"""Request-log formats for `costhawk-mcp import`: where each value sits in a line, and what it means.

A format is data, not code: the importer (importer.py) turns it into one DuckDB query that reads
every line, parses it once, validates every value and writes typed rows. Nothing loops over rows
in Python.

Formats shipped
---------------
* `costhawk`: the canonical JSON Lines format, one request per line (see `CANONICAL_FIELDS`).
* `csv`: the same columns in a CSV file with a header row.
* `openai`: raw OpenAI responses (Chat Completions, Responses API, Batch API output lines).
* `anthropic`: raw Anthropic Messages responses and Message Batches result lines.
* `otel`: OpenTelemetry GenAI spans in OTLP/JSON trace exports, one export request per line.

Raw responses may sit under `response`, `message` or `body` in a wrapper line that adds our own
fields beside them (`timestamp`, `api_key_id`, `query_id`, ...).

The store convention is that `input_tokens` counts *every* prompt token, cache reads and writes
included; each format's `columns` normalise to it (OpenAI's `prompt_tokens` already does;
Anthropic's `usage.input_tokens` does not, so cache reads and writes are added back).

Adding a format
---------------
Write a `Format` and call `register()` (the built-in ones are registered at the bottom of this
module); `--format` choices and auto-detection pick it up. A format declares:

1. `fields`: the values read from each line. A `Field` has a name, a `kind` (how it is
   validated: `text`, `count`, `flag`, `number`, `money`, `time`, `epoch` or `nanos`) and the
   JSON paths to look in, first present wins, e.g. `("usage", "prompt_tokens")`. Values failing
   their kind reject the line with a reason naming the field (`label`, default the first path).
2. `columns`: one SQL expression per staging column (`STAGING_COLUMNS` in store.py, minus
   `line`) over the field names, e.g. `"input_tokens": "input_tokens + coalesce(cache_read, 0)"`.
   The parameter `$default_ts` holds `--default-timestamp`. Constant SQL only: values stay bound.
   Double-quote a field name that is also an SQL word (`"timestamp"`, `"user"`).
3. `failures` and `checks`: `Check(condition, reason)` pairs over fields and columns; a line whose
   condition is true is rejected with that reason. `failures` run before the required-column
   test (e.g. "the batch request errored"), `checks` after it (e.g. cache parts ≤ input).
   `missing` gives the reason used when a required column (request_id, ts, model, input and
   output tokens) comes out NULL. `skips` are conditions for records that are not requests at
   all: skipped and counted by reason, never reported as bad.
4. `detect(first)`: whether a parsed first line looks like this format (for `--format auto`), and
   `extensions` (file suffixes that decide it without looking, like `.csv`).

The `reader` says how records come out of a file: `json_lines` (a record per line, paths into
the line's object), `csv` (paths are column names) or `otlp` (a record per span of an OTLP/JSON
trace export line; see `OTEL` below for its paths).

OpenTelemetry GenAI spans (`otel`)
----------------------------------
Input: OTLP/JSON `ExportTraceServiceRequest`s, one per line, as the Collector's file exporter
writes them. Every span of every line is a record; a bad span is reported with its line number
and its place in the line (`span 2 of 5 (<spanId> "<name>")`). Paths: `("span", "<field>")` for
the span's own fields (`traceId`, `startTimeUnixNano`, `("span", "status", "code")`, ...),
`("attributes", "<key>")` and `("resource", "<key>")` for attribute values (whichever of
stringValue, intValue, doubleValue, boolValue is set, as text; intValue is a JSON string in
OTLP/JSON and may be a number).

Mapping (semantic conventions for GenAI spans, development status as of 2026):
* request_id = spanId; query_id = traceId (an agent run is one query); ts = startTimeUnixNano;
  latency_ms = end - start; status = `ok`/`error` from the span status (unset: NULL).
* model = gen_ai.response.model, else gen_ai.request.model (the response names the snapshot
  that was billed); provider = gen_ai.provider.name, else the older gen_ai.system, with the
  convention's names mapped to ours (gcp.gemini/gcp.vertex_ai/gcp.gen_ai -> google,
  azure.ai.openai -> azure, x_ai -> xai, mistral_ai -> mistral).
* input_tokens = gen_ai.usage.input_tokens (else the deprecated gen_ai.usage.prompt_tokens),
  which by the conventions already counts every prompt token, cache reads and writes included
  (for Anthropic the instrumentation adds them up), exactly the store's own rule.
  output_tokens = gen_ai.usage.output_tokens (else gen_ai.usage.completion_tokens; 0 for an
  `embeddings` span).
* cache reads = gen_ai.usage.cache_read.input_tokens, else the older or vendor spellings
  gen_ai.usage.cache_read_input_tokens (OpenLLMetry), gen_ai.usage.input_tokens.cached (Sentry),
  gen_ai.usage.cached_tokens; cache writes = gen_ai.usage.cache_creation.input_tokens, else
  gen_ai.usage.cache_creation_input_tokens, gen_ai.usage.input_tokens.cache_write. Writes are
  priced as 5-minute writes (no convention tells 1-hour writes apart). A span whose cache parts
  exceed its input_tokens is rejected: its instrumentation does not follow the conventions.
* service_tier = openai.response.service_tier (else gen_ai.openai.response.service_tier); no
  convention marks batch requests, so batch is false.
* feature = the resource's service.name (except the SDK default `unknown_service...`);
  user_id = user.id (else enduser.id); project, api_key_id and key_name stay empty.

Only spans carrying gen_ai.usage attributes become requests. Other spans are skipped and counted
(by reason), not reported: spans that are no GenAI call, GenAI agent or tool spans without
usage, failed calls without usage. A model call (chat, text_completion, generate_content,
embeddings, or any span naming a request model) without usage *is* reported, since its cost
is unknown. A span with usage that is an ancestor of another span with usage in the same file
(an agent run's totals, or a framework span around the SDK's own) is skipped as an aggregate,
so no call is counted twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["text", "count", "flag", "number", "money", "time", "epoch", "nanos"]
Reader = Literal["json_lines", "csv", "otlp"]
Path = tuple[str, ...]


@dataclass(frozen=True)
class Field:
    """One value read from each line: where to look (first present path wins) and how to validate it."""

    name: str
    kind: Kind
    paths: tuple[Path, ...]
    label: str = ""  # how reasons name it (default: the first path, dotted)

    @property
    def display(self) -> str:
        """The name a rejection reason uses for this value."""
        return self.label or ".".join(self.paths[0])


@dataclass(frozen=True)
class Check:
    """A line is rejected with `reason` when `condition` (SQL over fields and columns) is true."""

    condition: str
    reason: str
    got: str | None = None  # SQL for the offending value shown after the reason


@dataclass(frozen=True)
class Format:
    """A request-log format: see the module docstring for how to add one."""

    name: str
    summary: str
    reader: Reader
    fields: tuple[Field, ...]
    columns: Mapping[str, str]
    missing: Mapping[str, str] = field(default_factory=dict)
    failures: tuple[Check, ...] = ()
    checks: tuple[Check, ...] = ()
    skips: tuple[Check, ...] = ()  # records that are not requests: skipped and counted by reason
    usage: str | None = None  # SQL: the record carries usage (an ancestor of another such record is an aggregate)
    extensions: tuple[str, ...] = ()
    detect: Callable[[Any], bool] | None = None


# Staging columns that may not be NULL, with the default reason when they are.
REQUIRED: dict[str, str] = {
    "request_id": "request_id: missing (a non-empty string)",
    "ts": "timestamp: missing; add one to the line or pass --default-timestamp",
    "model": "model: missing (a non-empty string)",
    "input_tokens": "input_tokens: missing (a whole number ≥ 0)",
    "output_tokens": "output_tokens: missing (a whole number ≥ 0)",
}

# Canonical fields: (name, kind, extra accepted spellings).
CANONICAL_FIELDS: tuple[tuple[str, Kind, tuple[str, ...]], ...] = (
    ("request_id", "text", ()),
    ("timestamp", "time", ("ts",)),
    ("provider", "text", ()),
    ("model", "text", ()),
    ("api_key_id", "text", ()),
    ("key_name", "text", ()),
    ("project", "text", ()),
    ("user", "text", ("user_id",)),
    ("query_id", "text", ()),
    ("feature", "text", ()),
    ("input_tokens", "count", ()),
    ("cached_input_tokens", "count", ()),
    ("cache_write_input_tokens", "count", ("cache_write_tokens",)),
    ("cache_write_1h_input_tokens", "count", ("cache_write_1h_tokens",)),
    ("output_tokens", "count", ()),
    ("batch", "flag", ()),
    ("service_tier", "text", ()),
    ("latency_ms", "number", ()),
    ("status", "text", ()),
    ("cost_usd", "money", ()),
)

_CANONICAL_COLUMNS: dict[str, str] = {
    "request_id": "request_id",
    "ts": 'coalesce("timestamp", $default_ts)',
    "model": "model",
    "provider": "provider",
    "api_key_id": "api_key_id",
    "key_name": "key_name",
    "project": "project",
    "user_id": '"user"',
    "query_id": "query_id",
    "feature": "feature",
    "input_tokens": "input_tokens",
    "cached_input_tokens": "coalesce(cached_input_tokens, 0)",
    "cache_write_tokens": "coalesce(cache_write_input_tokens, 0)",
    "cache_write_1h_tokens": "coalesce(cache_write_1h_input_tokens, 0)",
    "output_tokens": "output_tokens",
    "batch": "coalesce(batch, false)",
    "service_tier": "service_tier",
    "latency_ms": "latency_ms",
    "status": "status",
    "reported_cost_usd": "cost_usd",
}

_CANONICAL_CHECKS = (
    Check(
        "cached_input_tokens + cache_write_tokens + cache_write_1h_tokens > input_tokens",
        "cached_input_tokens + cache_write_input_tokens + cache_write_1h_input_tokens: more than input_tokens, "
        "which counts every prompt token, cache reads and writes included",
        "cached_input_tokens || ' + ' || cache_write_tokens || ' + ' || cache_write_1h_tokens || ' > ' || input_tokens",
    ),
)

# Our own fields that a wrapper line may put beside a raw provider response.
_WRAPPER_TEXT = ("provider", "api_key_id", "key_name", "project", "query_id", "feature")


def _wrapper_fields() -> tuple[Field, ...]:
    return (
        *(Field(name, "text", ((name,),)) for name in _WRAPPER_TEXT),
        Field("request_id_own", "text", (("request_id",),), "request_id"),
        Field("timestamp", "time", (("timestamp",), ("ts",)), "timestamp"),
        Field("user", "text", (("user",), ("user_id",)), "user"),
        Field("batch_flag", "flag", (("batch",),), "batch"),
        Field("latency_ms", "number", (("latency_ms",),)),
        Field("cost_usd", "money", (("cost_usd",),)),
    )


def _wrapper_columns() -> dict[str, str]:
    return {
        "api_key_id": "api_key_id",
        "key_name": "key_name",
        "project": "project",
        "user_id": '"user"',
        "query_id": "query_id",
        "feature": "feature",
        "latency_ms": "latency_ms",
        "reported_cost_usd": "cost_usd",
    }


def _under(prefixes: tuple[Path, ...], *path: str) -> tuple[Path, ...]:
    return tuple((*prefix, *path) for prefix in prefixes)


def _dig(obj: Any, path: Path) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


# ---------------------------------------------------------------------------------------- costhawk
def _looks_canonical(first: Any) -> bool:
    return isinstance(first, dict) and "usage" not in first and "input_tokens" in first and "model" in first


def _canonical_fields() -> tuple[Field, ...]:
    return tuple(Field(name, kind, tuple((n,) for n in (name, *aliases))) for name, kind, aliases in CANONICAL_FIELDS)


COSTHAWK = Format(
    name="costhawk",
    summary="canonical JSON Lines, one request per line",
    reader="json_lines",
    fields=_canonical_fields(),
    columns=_CANONICAL_COLUMNS,
    checks=_CANONICAL_CHECKS,
    extensions=(),
    detect=_looks_canonical,
)

CSV = Format(
    name="csv",
    summary="the canonical columns in a CSV file with a header row",
    reader="csv",
    fields=_canonical_fields(),
    columns=_CANONICAL_COLUMNS,
    checks=_CANONICAL_CHECKS,
    extensions=(".csv", ".csv.gz"),
    detect=None,
)

# ------------------------------------------------------------------------------------------ openai
# Where the response object sits: a Batch API output line, a wrapper, or the line itself.
_OPENAI_AT: tuple[Path, ...] = (("response", "body"), ("response",), ("body",), ())


def _looks_openai(first: Any) -> bool:
    for prefix in _OPENAI_AT:
        r = _dig(first, prefix)
        if not isinstance(r, dict):
            continue
        usage = r.get("usage")
        if r.get("object") in ("chat.completion", "response", "text_completion"):
            return True
        if isinstance(usage, dict) and ("prompt_tokens" in usage or "input_tokens_details" in usage):
            return True
    return False


OPENAI = Format(
    name="openai",
    summary="raw OpenAI responses: Chat Completions, Responses API, Batch API output lines",
    reader="json_lines",
    fields=(
        *_wrapper_fields(),
        Field("response_id", "text", _under(_OPENAI_AT, "id"), "id"),
        Field("model", "text", _under(_OPENAI_AT, "model"), "model"),
        Field("created", "epoch", _under(_OPENAI_AT, "created") + _under(_OPENAI_AT, "created_at"), "created"),
        Field(
            "prompt_tokens",
            "count",
            tuple(p for at in _OPENAI_AT for p in ((*at, "usage", "prompt_tokens"), (*at, "usage", "input_tokens"))),
            "usage.prompt_tokens",
        ),
        Field(
            "cached_tokens",
            "count",
            tuple(
                p
                for at in _OPENAI_AT
                for p in (
                    (*at, "usage", "prompt_tokens_details", "cached_tokens"),
                    (*at, "usage", "input_tokens_details", "cached_tokens"),
                )
            ),
            "usage.prompt_tokens_details.cached_tokens",
        ),
        Field(
            "completion_tokens",
            "count",
            tuple(
                p for at in _OPENAI_AT for p in ((*at, "usage", "completion_tokens"), (*at, "usage", "output_tokens"))
            ),
            "usage.completion_tokens",
        ),
        Field("service_tier", "text", _under(_OPENAI_AT, "service_tier")),
        Field("custom_id", "text", (("custom_id",),)),
        Field("status", "text", (("status",), ("response", "status_code"))),
        Field("error", "text", (("error", "code"), ("error", "message"), ("response", "body", "error", "message"))),
    ),
    columns={
        **_wrapper_columns(),
        "request_id": "coalesce(request_id_own, response_id)",
        "ts": 'coalesce("timestamp", created, $default_ts)',
        "model": "model",
        "provider": "coalesce(provider, 'openai')",
        "input_tokens": "prompt_tokens",
        "cached_input_tokens": "coalesce(cached_tokens, 0)",
        "cache_write_tokens": "0",
        "cache_write_1h_tokens": "0",
        "output_tokens": "completion_tokens",
        "batch": "coalesce(batch_flag, custom_id IS NOT NULL)",
        "service_tier": "service_tier",
        "status": "status",
    },
    missing={
        "request_id": "id: missing (the response id, or our own request_id beside it)",
        "input_tokens": "usage.prompt_tokens: missing; a response without usage was not billed",
        "output_tokens": "usage.completion_tokens: missing",
        "ts": "timestamp: missing (no created or timestamp); add one or pass --default-timestamp",
    },
    failures=(
        Check("error IS NOT NULL AND prompt_tokens IS NULL", "the request failed, so nothing was billed", "error"),
    ),
    checks=(
        Check(
            "cached_input_tokens > input_tokens",
            "usage.prompt_tokens_details.cached_tokens: more than usage.prompt_tokens, which includes them",
            "cached_input_tokens || ' > ' || input_tokens",
        ),
    ),
    detect=_looks_openai,
)

# --------------------------------------------------------------------------------------- anthropic
_ANTHROPIC_AT: tuple[Path, ...] = (("result", "message"), ("response",), ("message",), ("body",), ())


def _looks_anthropic(first: Any) -> bool:
    if isinstance(_dig(first, ("result", "message")), dict):
        return True
    for prefix in _ANTHROPIC_AT:
        r = _dig(first, prefix)
        if not isinstance(r, dict):
            continue
        usage = r.get("usage")
        if r.get("type") == "message":
            return True
        if isinstance(usage, dict) and ("cache_read_input_tokens" in usage or "cache_creation_input_tokens" in usage):
            return True
    return False


def _usage(*path: str) -> tuple[Path, ...]:
    return _under(_ANTHROPIC_AT, "usage", *path)


# Cache writes: the 5m/1h split when present, else the total counts as 5-minute writes.
_CACHE_WRITES = "coalesce(cache_creation, coalesce(write_5m, 0) + coalesce(write_1h, 0))"

ANTHROPIC = Format(
    name="anthropic",
    summary="raw Anthropic Messages responses and Message Batches result lines",
    reader="json_lines",
    fields=(
        *_wrapper_fields(),
        Field("message_id", "text", _under(_ANTHROPIC_AT, "id"), "id"),
        Field("model", "text", _under(_ANTHROPIC_AT, "model"), "model"),
        Field("base_input", "count", _usage("input_tokens"), "usage.input_tokens"),
        Field("cache_read", "count", _usage("cache_read_input_tokens"), "usage.cache_read_input_tokens"),
        Field("cache_creation", "count", _usage("cache_creation_input_tokens"), "usage.cache_creation_input_tokens"),
        Field(
            "write_5m",
            "count",
            _usage("cache_creation", "ephemeral_5m_input_tokens"),
            "usage.cache_creation.ephemeral_5m_input_tokens",
        ),
        Field(
            "write_1h",
            "count",
            _usage("cache_creation", "ephemeral_1h_input_tokens"),
            "usage.cache_creation.ephemeral_1h_input_tokens",
        ),
        Field("output", "count", _usage("output_tokens"), "usage.output_tokens"),
        Field("service_tier", "text", _usage("service_tier"), "usage.service_tier"),
        Field("result_type", "text", (("result", "type"),), "result.type"),
        Field("line_type", "text", (("type",),), "type"),
        Field("status", "text", (("status",),)),
    ),
    columns={
        **_wrapper_columns(),
        "request_id": "coalesce(request_id_own, message_id)",
        "ts": 'coalesce("timestamp", $default_ts)',
        "model": "model",
        "provider": "coalesce(provider, 'anthropic')",
        "input_tokens": f"base_input + coalesce(cache_read, 0) + {_CACHE_WRITES}",
        "cached_input_tokens": "coalesce(cache_read, 0)",
        "cache_write_tokens": f"{_CACHE_WRITES} - coalesce(write_1h, 0)",
        "cache_write_1h_tokens": "coalesce(write_1h, 0)",
        "output_tokens": "output",
        "batch": "coalesce(batch_flag, result_type IS NOT NULL, service_tier = 'batch')",
        "service_tier": "service_tier",
        "status": "coalesce(status, result_type)",
    },
    missing={
        "request_id": "id: missing (the message id, or our own request_id beside it)",
        "ts": "timestamp: missing (Anthropic responses carry none); add one beside the response or pass --default-timestamp",
        "input_tokens": "usage.input_tokens: missing; a response without usage was not billed",
        "output_tokens": "usage.output_tokens: missing",
    },
    failures=(
        Check(
            "result_type IS NOT NULL AND result_type <> 'succeeded'",
            "result.type: the batch request did not succeed, so nothing was billed",
            "result_type",
        ),
        Check("line_type = 'error'", "an error response, so nothing was billed", "line_type"),
    ),
    checks=(
        Check(
            "cache_creation IS NOT NULL AND (write_5m IS NOT NULL OR write_1h IS NOT NULL)"
            " AND coalesce(write_5m, 0) + coalesce(write_1h, 0) <> cache_creation",
            "usage.cache_creation: ephemeral_5m_input_tokens + ephemeral_1h_input_tokens differ from "
            "cache_creation_input_tokens",
            "coalesce(write_5m, 0) || ' + ' || coalesce(write_1h, 0) || ' ≠ ' || cache_creation",
        ),
        Check(
            "coalesce(write_1h, 0) > cache_creation",
            "usage.cache_creation.ephemeral_1h_input_tokens: more than cache_creation_input_tokens",
            "write_1h || ' > ' || cache_creation",
        ),
    ),
    detect=_looks_anthropic,
)


# -------------------------------------------------------------------------------------------- otel
def _looks_otlp(first: Any) -> bool:
    return isinstance(first, dict) and any(
        isinstance(first.get(key), list) for key in ("resourceSpans", "resourceLogs", "resourceMetrics")
    )


def _attr(*keys: str) -> tuple[Path, ...]:
    return tuple(("attributes", key) for key in keys)


# Usage attributes, current spelling first (see the module docstring for where each comes from).
_INPUT = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
_OUTPUT = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
_CACHE_READ = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.usage.input_tokens.cached",
    "gen_ai.usage.cached_tokens",
)
_CACHE_WRITE = (
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "gen_ai.usage.input_tokens.cache_write",
)
# Operations that are one model call each (gen_ai.operation.name); agent and tool spans are not.
_MODEL_CALLS = "('chat', 'text_completion', 'generate_content', 'embeddings')"
# The conventions' provider names that differ from ours (catalog.PROVIDER_ALIASES does the rest).
_OTEL_PROVIDERS = (
    "CASE lower(trim(provider)) WHEN 'gcp.gemini' THEN 'google' WHEN 'gcp.vertex_ai' THEN 'google' "
    "WHEN 'gcp.gen_ai' THEN 'google' WHEN 'azure.ai.openai' THEN 'azure' WHEN 'x_ai' THEN 'xai' "
    "WHEN 'mistral_ai' THEN 'mistral' ELSE provider END"
)
_FAILED = "status_code IN ('2', 'STATUS_CODE_ERROR')"

OTEL = Format(
    name="otel",
    summary="OpenTelemetry GenAI spans: OTLP/JSON trace exports, one export request per line",
    reader="otlp",
    fields=(
        Field("span_id", "text", (("span", "spanId"),), "spanId"),
        Field("trace_id", "text", (("span", "traceId"),), "traceId"),
        Field("start_ns", "nanos", (("span", "startTimeUnixNano"),), "startTimeUnixNano"),
        Field("end_ns", "nanos", (("span", "endTimeUnixNano"),), "endTimeUnixNano"),
        Field("status_code", "text", (("span", "status", "code"),), "status.code"),
        Field("model", "text", _attr("gen_ai.response.model", "gen_ai.request.model"), "gen_ai.response.model"),
        Field("request_model", "text", _attr("gen_ai.request.model"), "gen_ai.request.model"),
        Field("provider", "text", _attr("gen_ai.provider.name", "gen_ai.system"), "gen_ai.provider.name"),
        Field("operation", "text", _attr("gen_ai.operation.name"), "gen_ai.operation.name"),
        Field("input", "count", _attr(*_INPUT), "gen_ai.usage.input_tokens"),
        Field("output", "count", _attr(*_OUTPUT), "gen_ai.usage.output_tokens"),
        Field("cache_read", "count", _attr(*_CACHE_READ), "gen_ai.usage.cache_read.input_tokens"),
        Field("cache_write", "count", _attr(*_CACHE_WRITE), "gen_ai.usage.cache_creation.input_tokens"),
        Field("any_usage", "text", _attr(*_INPUT, *_OUTPUT, *_CACHE_READ, *_CACHE_WRITE), "gen_ai.usage"),
        Field(
            "service_tier",
            "text",
            _attr("openai.response.service_tier", "gen_ai.openai.response.service_tier"),
            "openai.response.service_tier",
        ),
        Field("service", "text", (("resource", "service.name"),), "service.name"),
        Field("user", "text", _attr("user.id", "enduser.id"), "user.id"),
    ),
    columns={
        "request_id": "span_id",
        "ts": "coalesce(make_timestamp(start_ns // 1000), $default_ts)",
        "model": "model",
        "provider": _OTEL_PROVIDERS,
        "api_key_id": "NULL",
        "key_name": "NULL",
        "project": "NULL",
        "user_id": '"user"',
        "query_id": "trace_id",
        "feature": "CASE WHEN NOT starts_with(service, 'unknown_service') THEN service END",
        "input_tokens": "input",
        "cached_input_tokens": "coalesce(cache_read, 0)",
        "cache_write_tokens": "coalesce(cache_write, 0)",
        "cache_write_1h_tokens": "0",
        "output_tokens": "CASE WHEN operation = 'embeddings' THEN coalesce(output, 0) ELSE output END",
        "batch": "false",
        "service_tier": "service_tier",
        "latency_ms": "CASE WHEN end_ns >= start_ns THEN (end_ns - start_ns) / 1e6 END",
        "status": f"CASE WHEN status_code IN ('1', 'STATUS_CODE_OK') THEN 'ok' WHEN {_FAILED} THEN 'error' END",
        "reported_cost_usd": "NULL",
    },
    missing={
        "request_id": "spanId: missing",
        "ts": "startTimeUnixNano: missing; pass --default-timestamp to use one time for such spans",
        "model": "gen_ai.request.model: missing (nor gen_ai.response.model), so the call cannot be priced",
        "input_tokens": "gen_ai.usage.input_tokens: missing; a model call without usage cannot be priced "
        "(streamed calls need usage reporting, e.g. OpenAI's stream_options.include_usage)",
        "output_tokens": "gen_ai.usage.output_tokens: missing",
    },
    checks=(
        Check(
            "cached_input_tokens + cache_write_tokens > input_tokens",
            "gen_ai.usage.cache_read.input_tokens + gen_ai.usage.cache_creation.input_tokens: more than "
            "gen_ai.usage.input_tokens, which by the GenAI conventions includes them (the instrumentation "
            "seems to report Anthropic's own input_tokens, without the cache)",
            "cached_input_tokens || ' + ' || cache_write_tokens || ' > ' || input_tokens",
        ),
    ),
    skips=(
        Check(
            "any_usage IS NULL AND operation IS NULL AND request_model IS NULL AND model IS NULL",
            "not a GenAI model call (no gen_ai usage, operation or model attributes)",
        ),
        Check(f"any_usage IS NULL AND {_FAILED}", "a failed GenAI call without usage: nothing was billed"),
        Check(
            f"any_usage IS NULL AND operation IS NOT NULL AND operation NOT IN {_MODEL_CALLS}",
            "a GenAI agent or tool span without usage (not a model call)",
        ),
    ),
    usage="any_usage IS NOT NULL",
    detect=_looks_otlp,
)


# ---------------------------------------------------------------------------------------- registry
# Detection tries formats in this order; the canonical format first, so a line with our own
# top-level token counts is never mistaken for a wrapper.
FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    """Add a format (replacing one of the same name); returns it."""
    FORMATS[fmt.name] = fmt
    return fmt


for _fmt in (COSTHAWK, OPENAI, ANTHROPIC, OTEL, CSV):
    register(_fmt)


def by_extension(filename: str) -> Format | None:
    """The format a file's suffix decides on its own (e.g. `.csv`), if any."""
    lower = filename.lower()
    for fmt in FORMATS.values():
        if any(lower.endswith(ext) for ext in fmt.extensions):
            return fmt
    return None


def by_content(first: Any) -> Format | None:
    """The first format whose `detect` accepts a parsed first line."""
    for fmt in FORMATS.values():
        if fmt.detect is not None and fmt.detect(first):
            return fmt
    return None
