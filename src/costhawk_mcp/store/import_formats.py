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

Raw responses may sit under `response`, `message` or `body` in a wrapper line that adds our own
fields beside them (`timestamp`, `api_key_id`, `query_id`, ...).

The store convention is that `input_tokens` counts *every* prompt token, cache reads and writes
included; each format's `columns` normalise to it (OpenAI's `prompt_tokens` already does;
Anthropic's `usage.input_tokens` does not, so cache reads and writes are added back).

Adding a format (e.g. `otel` for OpenTelemetry GenAI spans)
-----------------------------------------------------------
Write a `Format` and call `register()` (the built-in ones are registered at the bottom of this
module); `--format` choices and auto-detection pick it up. A format declares:

1. `fields`: the values read from each line. A `Field` has a name, a `kind` (how it is
   validated: `text`, `count`, `flag`, `number`, `money`, `time` or `epoch`) and the JSON paths
   to look in, first present wins, e.g. `("attributes", "gen_ai.usage.input_tokens")` (keys are
   quoted, so dots inside a key are fine). Values failing their kind reject the line with a
   reason naming the field (`label`, default the first path).
2. `columns`: one SQL expression per staging column (`STAGING_COLUMNS` in store.py, minus
   `line`) over the field names, e.g. `"input_tokens": "input_tokens + coalesce(cache_read, 0)"`.
   The parameter `$default_ts` holds `--default-timestamp`. Constant SQL only: values stay bound.
   Double-quote a field name that is also an SQL word (`"timestamp"`, `"user"`).
3. `failures` and `checks`: `Check(condition, reason)` pairs over fields and columns; a line whose
   condition is true is rejected with that reason. `failures` run before the required-column
   test (e.g. "the batch request errored"), `checks` after it (e.g. cache parts ≤ input).
   `missing` gives the reason used when a required column (request_id, ts, model, input and
   output tokens) comes out NULL.
4. `detect(first)`: whether a parsed first line looks like this format (for `--format auto`), and
   `extensions` (file suffixes that decide it without looking, like `.csv`).

For OTel: spans with flat attributes (`{"attributes": {"gen_ai.usage.input_tokens": 12, ...}}`,
as most exporters write them to files) need only fields: `gen_ai.usage.input_tokens`,
`gen_ai.usage.output_tokens`, `gen_ai.response.model` (falling back to `gen_ai.request.model`),
`gen_ai.system` for the provider, the span id as request_id, `endTimeUnixNano` (a new kind, or
an `epoch` with a /1e9 column expression) and, for Anthropic, the cache-read and cache-creation
attributes added back into input as this module's Anthropic format does. OTLP/JSON proper nests
attributes as `[{"key": ..., "value": {"intValue": ...}}]` lists, which paths cannot address by
key: that needs a new `Reader` in importer.py that unnests a span's attribute list into an object
first (`map_from_entries`), then the same fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["text", "count", "flag", "number", "money", "time", "epoch"]
Reader = Literal["json_lines", "csv"]
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

# ---------------------------------------------------------------------------------------- registry
# Detection tries formats in this order; the canonical format first, so a line with our own
# top-level token counts is never mistaken for a wrapper.
FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    """Add a format (replacing one of the same name); returns it."""
    FORMATS[fmt.name] = fmt
    return fmt


for _fmt in (COSTHAWK, OPENAI, ANTHROPIC, CSV):
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
