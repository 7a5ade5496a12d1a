"""Helpers for the hardening tests (fuzzing, SQL injection, secrets).

* a populated store: a few hundred request-log rows, a provider sync from the local fake, budgets;
* a checksum of every table (and sequence) in the database, to prove a read-only tool wrote nothing;
* hypothesis strategies that build arguments from a tool's own `input_schema` (so a new tool is
  fuzzed without any change here), mixed with targeted hostile values;
* the checks every result must pass: no transport or JSON-RPC error, never the generic "internal
  error", and every tool error naming the field it is about;
* a synchronous facade over an async MCP client (hypothesis drives plain functions), running the
  client in one event loop thread for the whole test.
"""

from __future__ import annotations

import functools
import json
import math
import os
import random
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from mcp.client import Client
from mcp.types import CallToolResult, TextContent, Tool

from costhawk_mcp.analytics.budgets import set_budget
from costhawk_mcp.config import Settings
from costhawk_mcp.store.db import Connection, utcnow
from costhawk_mcp.store.store import RequestRow, Store
from costhawk_mcp.sync.runner import raise_for_errors, run_sync
from fake_providers import FakeProviders, generate

# One fixed profile for every fuzz test: reproducible in CI (derandomize), no example database in the
# tree, no deadline (a call's time depends on the shared machine), and no health checks (one server is
# shared across examples on purpose; some strategies draw large strings).
FUZZ_SETTINGS: dict[str, Any] = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": list(HealthCheck),
    "phases": [Phase.explicit, Phase.generate, Phase.shrink],
}


def fuzz_settings(max_examples: int) -> hypothesis_settings:
    """The shared hypothesis profile with `max_examples` examples."""
    return hypothesis_settings(max_examples=max_examples, **FUZZ_SETTINGS)


# ---------------------------------------------------------------------------------------------- data
MODELS = ("test-gpt", "test-gpt-mini", "test-claude", "test-gemini", "test-embed", "test-claude-20260101")
UNPRICED_MODEL = "mystery-model-9000"
KEYS = ("key-a", "key-b", "key-c")
PROJECTS = ("alpha", "beta")
FEATURES = ("chat", "nightly-batch", "search")
SECRET_PROJECT = "secret-project"  # a project only a filter that really matches it may return


def sample_rows(now: datetime, count: int = 300, seed: int = 11) -> list[RequestRow]:
    """`count` request-log rows over the 70 days before `now`, deterministic from `seed`.

    Priced and unpriced models, aliases, keys and projects with and without values, query ids shared by
    a few calls, cache reads, batch, long prompts past the long-context thresholds, latencies.
    """
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        model = rng.choice((*MODELS, UNPRICED_MODEL))
        prompt = rng.choice((0, 1, 500, 20_000, 150_000, 250_000))
        rows.append(
            RequestRow(
                request_id=f"fuzz-{i:04d}",
                ts=now - timedelta(hours=rng.randint(1, 24 * 70), minutes=rng.randint(0, 59)),
                model=model,
                api_key_id=rng.choice((*KEYS, None)),
                key_name=rng.choice(("Checkout service", None)),
                project=SECRET_PROJECT if i % 50 == 7 else rng.choice((*PROJECTS, None)),
                user_id=rng.choice(("u1", "u2", None)),
                query_id=rng.choice((None, f"q-{i // 3}")),
                feature=rng.choice((*FEATURES, None)),
                input_tokens=prompt,
                cached_input_tokens=prompt // 4 if rng.random() < 0.3 else 0,
                output_tokens=rng.choice((0, 10, 800, 4_000)),
                batch=rng.random() < 0.2,
                latency_ms=rng.choice((None, 120.0, 2_500.5)),
                status=rng.choice(("ok", "error", None)),
            )
        )
    return rows


def populate(store: Store, *, now: datetime | None = None, sync_days: int = 6) -> None:
    """Request logs, a real sync from the local fake providers (usage buckets, cost reports, key
    names), and two budgets: every table a tool reads has rows."""
    current = now or utcnow()
    store.insert_requests(sample_rows(current))
    fake = FakeProviders(now=current).start()
    try:
        first = (current - timedelta(days=sync_days)).replace(hour=0, minute=0, second=0, microsecond=0)
        generate(fake, first, hours=24 * sync_days, combos=4)
        settings = Settings.from_env({**os.environ, **fake.env()})
        report = anyio.run(lambda: run_sync(store, settings, since=first, until=current))
        raise_for_errors(report)
    finally:
        fake.stop()
    set_budget(store, scope="org", scope_id=None, amount_usd=Decimal("1000"), period="month")
    set_budget(store, scope="project", scope_id="alpha", amount_usd=Decimal("12.5"), period="week")


# ----------------------------------------------------------------------------------------- checksums
def table_checksums(conn: Connection) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent content hash of every table, plus every sequence's state.

    One query: per table `count(*)` and the sum of DuckDB's 64-bit `hash()` of each whole row, so any
    changed, added or removed row changes it. Table names come from the catalog itself (quoted), never
    from a caller.
    """
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND NOT temporary ORDER BY 1"
        ).fetchall()
    ]
    parts = [f"SELECT {_literal(t)}, count(*), sum(hash(t))::VARCHAR FROM {_identifier(t)} AS t" for t in tables]
    parts.append(
        "SELECT '<sequences>', count(*), string_agg(sequence_name || '=' || coalesce(last_value, -1), ',' "
        "ORDER BY sequence_name) FROM duckdb_sequences()"
    )
    return {name: (count, str(digest)) for name, count, digest in conn.execute(" UNION ALL ".join(parts)).fetchall()}


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def store_checksums(store: Store) -> dict[str, tuple[int, str]]:
    """`table_checksums` of a store, through its own read path."""
    with store.reading() as conn:
        return table_checksums(conn)


def file_checksums(path: str) -> dict[str, tuple[int, str]]:
    """`table_checksums` of a database file opened read-only (another process owns it)."""
    import duckdb

    conn = duckdb.connect(path, read_only=True)
    try:
        return table_checksums(conn)
    finally:
        conn.close()


def changed_tables(before: Mapping[str, tuple[int, str]], after: Mapping[str, tuple[int, str]]) -> list[str]:
    """Names of the tables whose count or content differs (or that appeared or vanished)."""
    return sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))


# ----------------------------------------------------------------------------------------- strategies
SQL_INJECTIONS = (
    "'; DROP TABLE requests; --",
    "x' OR '1'='1",
    "' OR 1=1 --",
    '" OR 1=1 --',
    "') UNION SELECT request_id, api_key_id, project FROM requests --",
    "1; DELETE FROM budgets",
    "alpha'--",
    "%' OR project LIKE '%",
    "' || (SELECT string_agg(project, ',') FROM requests) || '",
    "'); ATTACH '/tmp/evil.duckdb' AS evil; --",
    "\\'; DROP TABLE budgets; --",
    "\\",
    "\\\\",
    "%",
    "_",
    "*",
    "alpha\x00' OR '1'='1",
    "\x00",
    "$1",
    "?",
    "read_csv('/etc/passwd')",
    "COPY requests TO '/tmp/leak.csv'",
)
WEIRD_STRINGS = (
    "",
    " ",
    "\t\n",
    "null",
    "None",
    "[]",
    "{}",
    "true",
    "0",
    "-1",
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "inf",
    "1e400",
    "-1e400",
    "9" * 400,
    "😀🔥💸",
    "\u202eevil\u202c",
    "e\u0301\u0301\u0301",
    "\ud800",
    "ＡＬＰＨＡ",
    "alpha ",
    "ALPHA",
    "../../../../etc/passwd",
    "C:\\Windows\\system32",
    "%s%s%s%n",
    "{0}{__class__}",
    "${jndi:ldap://127.0.0.1/x}",
    "<script>alert(1)</script>",
    "x" * 5_000,
    "y" * 120_000,
)
BAD_DATES = (
    "1999-12-31",
    "2200-01-02",
    "0001-01-01",
    "9999-12-31",
    "9999-12-31T23:59:59.999999+14:00",
    "-0001-01-01",
    "+275760-09-13",
    "2026-02-30",
    "2026-13-01",
    "2026-11-27T25:00:00",
    "2026-W48",
    "20261127",
    "1e10",
    "now",
    "yesterday",
    "1700000000",
)
FILTER_STRINGS = (*KEYS, *PROJECTS, *FEATURES, SECRET_PROJECT, "q-3", "fuzz-0001", "Checkout service")
BAD_MODELS = ("test-gtp", "gpt-4o", "TEST-GPT", "openai/", "/test-gpt", "test-gpt" * 40)
HUGE_NUMBERS = (10**19, -(10**19), 2**63, -(2**63) - 1, 10**400)
SPECIAL_FLOATS = (math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, -0.0, 1e-300)

_DATE_WORDS = ("start", "end", "since", "until", "as_of", "on_date", "date", "week_ending")


@functools.cache
def _plausible_dates() -> tuple[str, ...]:
    """Dates and datetimes around today and the populated data, in the forms the tools accept."""
    today = utcnow().replace(microsecond=0)
    days = (0, 1, 3, 7, 14, 30, 45, 75, 400)
    values = [(today - timedelta(days=d)).date().isoformat() for d in days]
    values += [(today - timedelta(days=d, hours=5)).isoformat() + "Z" for d in (1, 10, 40)]
    values += [(today + timedelta(days=2)).date().isoformat(), "2000-01-01", "2200-01-01"]
    values += [(today - timedelta(days=9)).isoformat() + "+14:00", (today - timedelta(days=9)).isoformat() + "-12:00"]
    return tuple(values)


def weighted(*choices: tuple[st.SearchStrategy[Any], int]) -> st.SearchStrategy[Any]:
    """One of several strategies, picked with the given integer weights (the first shrinks best)."""
    pool = [strategy for strategy, weight in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


def hostile_strings() -> st.SearchStrategy[str]:
    """SQL fragments, odd and huge strings, unicode, dates far off or malformed, unknown models, text."""
    return st.one_of(
        st.sampled_from(SQL_INJECTIONS),
        st.sampled_from(WEIRD_STRINGS),
        st.sampled_from(BAD_DATES + BAD_MODELS),
        st.text(max_size=30),
    )


def strings_for(name: str) -> st.SearchStrategy[str]:
    """Plausible values for a string argument, chosen by its name so that calls get past the first
    check: dates for date-like names, catalog models and aliases for model names, provider names,
    otherwise values present in the populated store."""
    lowered = name.lower()
    if any(word == lowered or lowered.endswith(word) for word in _DATE_WORDS):
        pool: Sequence[str] = _plausible_dates()
    elif "model" in lowered:
        pool = (*MODELS, UNPRICED_MODEL, "openai/test-gpt", "gemini/test-gemini")
    elif "provider" in lowered:
        pool = ("openai", "anthropic", "google")
    elif "amount" in lowered or "usd" in lowered:
        pool = ("12.5", "1000", "0.01", "0.005", "1e3", "999999999999.99", "7")
    else:
        pool = FILTER_STRINGS
    return st.sampled_from(pool)


def any_json() -> st.SearchStrategy[Any]:
    """Any JSON-ish value: the wrong type for most arguments."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**6), max_value=10**6),
        st.sampled_from(HUGE_NUMBERS),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(SPECIAL_FLOATS),
        hostile_strings(),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
        max_leaves=8,
    )


@dataclass(frozen=True)
class SchemaView:
    """A tool's input schema with its `$defs`, for resolving references while generating."""

    schema: Mapping[str, Any]

    def resolve(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        ref = node.get("$ref")
        if not isinstance(ref, str):
            return node
        target: Any = self.schema
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        return self.resolve(target)


def conforming(view: SchemaView, node: Mapping[str, Any], name: str = "") -> st.SearchStrategy[Any]:
    """Values the schema allows, at and near its bounds, biased by the argument's name."""
    node = view.resolve(node)
    if "anyOf" in node:
        options = [view.resolve(option) for option in node["anyOf"]]
        values = st.one_of([conforming(view, o, name) for o in options if o.get("type") != "null"])
        if any(o.get("type") == "null" for o in options):  # null means "the default": present but rarer
            return weighted((values, 3), (st.none(), 1))
        return values
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if "const" in node:
        return st.just(node["const"])
    kind = node.get("type")
    if isinstance(kind, list):
        return st.one_of([conforming(view, {**node, "type": k}, name) for k in kind])
    if kind == "string":
        if node.get("format") == "date":
            return st.sampled_from(tuple(d for d in _plausible_dates() if len(d) == 10))
        return strings_for(name)
    if kind == "integer":
        low, high = node.get("minimum", 0), node.get("maximum")
        high = high if high is not None else low + 1_000
        small = st.integers(min_value=low, max_value=min(high, low + 5))  # ids, counts: the populated ones
        return st.one_of(small, st.integers(min_value=low, max_value=high), st.sampled_from((low, high)))
    if kind == "number":
        low = node.get("minimum", node.get("exclusiveMinimum", 0))
        high = node.get("maximum", node.get("exclusiveMaximum", 400))
        return st.floats(
            min_value=low,
            max_value=high,
            exclude_min="minimum" not in node,
            exclude_max="exclusiveMaximum" in node,
            allow_nan=False,
        )
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        return st.lists(
            conforming(view, node.get("items", {}), name),
            min_size=node.get("minItems", 0),
            max_size=min(node.get("maxItems", 3), 3),
        )
    if kind == "object" or "properties" in node:
        return objects(view, node, profiles=("clean",))
    return any_json()


def hostile(view: SchemaView, node: Mapping[str, Any], name: str = "") -> st.SearchStrategy[Any]:
    """Values the schema should refuse, or that stress what it accepts: wrong types, bounds ±1, NaN and
    infinities, enormous and negative numbers, hostile strings, over-long lists, broken nested objects."""
    node = view.resolve(node)
    options: list[st.SearchStrategy[Any]] = [any_json(), hostile_strings(), st.sampled_from(SPECIAL_FLOATS)]
    for bound, step in (("minimum", -1), ("maximum", 1), ("exclusiveMinimum", 0), ("exclusiveMaximum", 0)):
        if bound in node:
            options.append(st.just(node[bound] + step))
    for option in node.get("anyOf", ()):
        options.append(hostile(view, {k: v for k, v in view.resolve(option).items() if k != "anyOf"}, name))
    if node.get("type") == "array" or "items" in node:
        items = node.get("items", {})
        options.append(st.lists(hostile(view, items, name), min_size=1, max_size=3))
        if "maxItems" in node:
            options.append(st.lists(conforming(view, items, name), min_size=node["maxItems"] + 1, max_size=60))
    if node.get("type") == "object" or "properties" in node:
        options.append(objects(view, node, profiles=("one", "chaos")))
    return st.one_of(options)


EXTRA_NAMES = ("moedl", "limt", "strat", "x", "", "days ", "__proto__", "'; --")
PROFILES = ("clean", "one", "one", "one", "chaos")


# Known-good calls for tools whose arguments constrain each other in ways a schema cannot say
# (estimate_prompt wants exactly one of text and messages). The clean and one-hostile-field profiles
# start from one of these; every other tool, including any added later, needs none.
SEEDS: dict[str, tuple[dict[str, Any], ...]] = {
    "estimate_prompt": (
        {"model": "test-gpt", "text": "How much will this prompt cost?"},
        {"model": "test-claude", "messages": [{"role": "user", "content": "hi"}]},
    ),
}


def objects(
    view: SchemaView,
    node: Mapping[str, Any],
    *,
    profiles: Sequence[str] = PROFILES,
    seeds: Sequence[Mapping[str, Any]] = (),
) -> st.SearchStrategy[dict[str, Any]]:
    """Argument objects for a schema, in one of three profiles:

    * clean: required properties valid, each optional one present (valid) or absent (with `seeds`:
      a seed plus valid values for the properties no seed mentions);
    * one: a clean object with exactly one property (or an unknown extra name) made hostile, so the
      error must be about that one thing;
    * chaos: every property absent, valid or hostile at random, required ones may be missing, and
      sometimes an unknown name.
    """
    properties: Mapping[str, Any] = node.get("properties") or {}
    required = set(node.get("required") or ())
    seeded = {name for seed in seeds for name in seed}
    # Strategies are built once per schema, not per draw: building them dominated generation time.
    valid = {name: conforming(view, prop, name) for name, prop in properties.items()}
    bad = {name: hostile(view, prop, name) for name, prop in properties.items()}
    extras = st.tuples(st.sampled_from(EXTRA_NAMES), any_json())
    chaos_modes = st.sampled_from(("valid", "absent", "hostile"))

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        profile = draw(st.sampled_from(profiles))
        result: dict[str, Any] = {}
        if seeds and profile != "chaos":
            result = json.loads(json.dumps(draw(st.sampled_from(seeds))))  # a deep copy
        for name in properties:
            if profile == "chaos":
                mode = draw(chaos_modes)
            elif seeds and name in seeded:
                continue
            else:
                mode = "valid" if name in required or draw(st.booleans()) else "absent"
            if mode == "valid":
                result[name] = draw(valid[name])
            elif mode == "hostile":
                result[name] = draw(bad[name])
        if profile == "one" or (profile == "chaos" and draw(st.booleans())):
            target = draw(st.sampled_from([*properties, "<extra>"])) if profile == "one" else "<extra>"
            if target == "<extra>":
                extra, value = draw(extras)
                if extra not in properties:
                    result[extra] = value
            else:
                result[target] = draw(bad[target])
        return result

    return build()


def arguments_for(tool: Tool) -> st.SearchStrategy[dict[str, Any]]:
    """Generated arguments for one tool, from its own input schema (built once per schema)."""
    key = tool.name + json.dumps(tool.input_schema, sort_keys=True)
    if key not in _ARGUMENT_STRATEGIES:
        schema = tool.input_schema
        _ARGUMENT_STRATEGIES[key] = objects(SchemaView(schema), schema, seeds=SEEDS.get(tool.name, ()))
    return _ARGUMENT_STRATEGIES[key]


_ARGUMENT_STRATEGIES: dict[str, st.SearchStrategy[dict[str, Any]]] = {}


def string_arguments(tool: Tool) -> list[str]:
    """The names of a tool's arguments that accept a free string (directly or in a list), from its schema."""
    view = SchemaView(tool.input_schema)

    def takes_string(node: Mapping[str, Any]) -> bool:
        node = view.resolve(node)
        kinds = node.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if "string" in kinds and "enum" not in node:
            return True
        if "array" in kinds and takes_string(node.get("items", {})):
            return True
        return any(takes_string(option) for option in node.get("anyOf", ()))

    return [name for name, prop in (tool.input_schema.get("properties") or {}).items() if takes_string(prop)]


# --------------------------------------------------------------------------------------------- checks
_SDK_CRASH = re.compile(r"^Error executing tool \S+$")  # the SDK's text when a handler raised a plain exception


def text_of(result: CallToolResult) -> str:
    """The text blocks of a result, joined."""
    return "".join(block.text for block in result.content if isinstance(block, TextContent))


def error_problem(tool: str, text: str, names: Sequence[str]) -> str | None:
    """Why a tool error text is unacceptable (None when it is fine).

    It must not be the generic crash text (ours or the SDK's), and it must name the field it is about:
    one of `names` (the tool's arguments, the ones the call sent, or names such as environment variables
    a tool may legitimately blame) appears as a word in it.
    """
    stripped = text.strip()
    if "internal error" in stripped or _SDK_CRASH.match(stripped):
        return f"{tool} crashed: {stripped[:300]!r}"
    body = stripped.removeprefix(f"Error executing tool {tool}:")
    named = any(re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", body) for name in names if name)
    if not named and not any(repr(name) in body for name in names):
        return f"{tool} error names none of {sorted(set(names))}: {stripped[:300]!r}"
    return None


def encodable(value: Any) -> bool:
    """True when a value can be written as UTF-8 JSON (a lone surrogate cannot: only the in-memory
    transport, which does not serialise, can carry one; raw stdio tests send it escaped)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, ValueError):
        return False
    return True


def finite_json(value: Any) -> bool:
    """True when a structured result has no NaN or infinity anywhere (JSON cannot carry them)."""
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False
    return True


@dataclass
class CallLog:
    """Every call a fuzz test made, per target, so the test can prove how much it exercised."""

    calls: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    def add(self, target: str, *, error: bool) -> None:
        self.calls[target] = self.calls.get(target, 0) + 1
        if error:
            self.errors[target] = self.errors.get(target, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def summary(self) -> str:
        return ", ".join(f"{k}={v} ({self.errors.get(k, 0)} errors)" for k, v in sorted(self.calls.items()))


# ----------------------------------------------------------------------------------- sync client facade
class SyncClient:
    """An MCP client living in a portal's event loop, callable from plain (hypothesis) code."""

    def __init__(self, portal: BlockingPortal, client: Client) -> None:
        self.portal = portal
        self.client = client

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.portal.call(fn, *args)

    def tools(self) -> list[Tool]:
        return list(self.call(self.client.list_tools).tools)

    def call_tool(self, name: str, arguments: Mapping[str, Any]) -> CallToolResult:
        result: CallToolResult = self.call(self.client.call_tool, name, dict(arguments))
        return result


@contextmanager
def sync_client(target: Any, **client_options: Any) -> Iterator[SyncClient]:
    """`Client(target)` opened once in a background event loop, for a whole test."""
    with (
        start_blocking_portal(backend="asyncio") as portal,
        portal.wrap_async_context_manager(Client(target, **client_options)) as client,
    ):
        yield SyncClient(portal, client)


def shorten(value: Any, limit: int = 80) -> Any:
    """A copy of generated arguments with long strings cut, for readable failure messages."""
    if isinstance(value, str):
        return value if len(value) <= limit else f"{value[:limit]}…<{len(value)} chars>"
    if isinstance(value, list):
        return [shorten(v, limit) for v in value]
    if isinstance(value, dict):
        return {shorten(k, limit): shorten(v, limit) for k, v in value.items()}
    return value


def checked_call(
    client: SyncClient, tool: Tool, arguments: Mapping[str, Any], log: CallLog, *, blame: Sequence[str] = ()
) -> CallToolResult:
    """Call a tool and apply the fuzz contract; returns the result for further checks.

    No exception may reach the client (a transport or JSON-RPC error, or a result failing its own
    output schema); an error must name a field (`blame` adds names a tool may legitimately cite); a
    success must carry structured content without NaN or infinity.
    """
    try:
        result = client.call_tool(tool.name, arguments)
    except Exception as exc:
        raise AssertionError(f"{tool.name}({shorten(dict(arguments))}) raised {exc!r}") from exc
    log.add(tool.name, error=bool(result.is_error))
    if result.is_error:
        names = [*(tool.input_schema.get("properties") or {}), *arguments, *blame]
        problem = error_problem(tool.name, text_of(result), names)
        assert problem is None, f"{problem}\narguments: {shorten(dict(arguments))}"
    else:
        if tool.output_schema is not None:
            assert result.structured_content is not None, f"{tool.name} returned no structured content"
        assert finite_json(result.structured_content), f"{tool.name} returned NaN/inf: {shorten(dict(arguments))}"
    return result
