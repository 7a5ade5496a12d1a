"""Bulk import of request logs: DuckDB reads, validates and stages; the store merges.

One file is one import, in two steps:

1. **Stage** (no lock on the costhawk database). One parallel DuckDB query reads the file and
   writes a temporary DuckDB database beside it. DuckDB's CSV reader splits lines (a "delimiter"
   JSON cannot contain, no quoting, `\r\n` or `\n` ending a line, blank lines kept); each line is
   parsed once (`json_extract_string` of every path the format reads, import_formats.py); every
   value is checked in SQL; each line gets typed columns or the index of its first problem. Lines
   the reader itself refuses (invalid UTF-8, longer than `MAX_LINE_BYTES`) come from its rejects
   table with their line numbers.
2. **Merge** (one write transaction: the only time other processes wait). The staged file is
   attached read-only and `Store.merge_staged_requests` inserts the request ids not stored yet,
   priced at the price of their day. Re-importing a file inserts nothing; a killed import
   leaves all of the file or none of it.

Line numbers cost: a `row_number()` over the reader runs on one thread. So the main query numbers
nothing and keeps a hash of each line; only when a file has bad lines or repeats a request id
does a second, light pass number the lines and find those by hash. First line wins among
repeats, decided there too, outside the lock.

Validation rules (also in `costhawk-mcp import --help`):
* token counts: whole numbers from 0 to 10^15, as JSON numbers (`1000`, `1000.0`) or digit-only
  strings (`"1000"`, as BigQuery exports INT64); `1.5`, `-3`, `true` and `"12k"` are rejected.
* timestamps: RFC 3339 (`2026-11-27T09:30:00Z`, `...+02:00`); without an offset, UTC; OpenAI's
  `created` Unix seconds when the line has no `timestamp`.
* `cost_usd`: a number (or numeric string) ≥ 0, read from the line's text into DECIMAL(38, 15)
  (15 decimal places), never through a double.
* `batch`: true/false (also "true"/"false", 1/0, "yes"/"no").
* a blank line is skipped and counted, never an error; every other line is imported or rejected.
* an `api_key_id` that looks like key material (`sk-…` longer than 20 characters, `sk-ant-…`,
  `AIza…`, `xai-…`, `gsk_…`) is never stored: it becomes `key_` + 16 hex digits of its SHA-256,
  and its redacted hint (`sk-…abcd`) goes to `api_keys`. A `key_name` that looks like a key is
  replaced by its hint.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from costhawk_mcp.errors import InvalidArgument
from costhawk_mcp.store.db import Connection, utcnow
from costhawk_mcp.store.import_formats import FORMATS, REQUIRED, Check, Field, Format, by_content, by_extension
from costhawk_mcp.store.store import Store

# Longest accepted line; a raw response with a long completion can run to megabytes.
MAX_LINE_BYTES = 64 * 1024 * 1024
# The line splitter's "column delimiter": control characters, which JSON never contains unescaped,
# so a line is one column. (A garbage line containing exactly this sequence would be cut there.)
_DELIMITER = "\x01\x02\x03\x04"
MAX_TOKENS = 10**15
# DuckDB would otherwise cache up to 80% of RAM (5 GB of RSS importing 10 million rows); with this
# it evicts and spills instead, for a few percent of speed.
MEMORY_LIMIT = "2GB"
SECRET_ID_HEX = 16

STAGING_OUT = (
    "request_id",
    "ts",
    "model",
    "provider",
    "api_key_id",
    "key_name",
    "project",
    "user_id",
    "query_id",
    "feature",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "batch",
    "service_tier",
    "latency_ms",
    "status",
    "reported_cost_usd",
)

_SECRET_PREFIXES = "^(sk-ant-|sk-proj-|sk-svcacct-|sk-admin-|sk-|AIza|xai-|gsk_)"

Progress = Callable[[str, "float | None"], None]


@dataclass(frozen=True)
class BadLine:
    """A rejected line and why."""

    line: int
    reason: str


@dataclass
class FileReport:
    """What importing one file did."""

    path: str
    format: str
    lines: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    blank: int = 0
    bad_lines: list[BadLine] = field(default_factory=list)
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    cost_usd: Decimal = Decimal(0)
    unpriced_requests: int = 0
    unpriced_models: list[str] = field(default_factory=list)
    import_id: int | None = None
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # wall seconds per phase (stage, merge, ...)


@dataclass
class _Staged:
    accepted: int = 0  # rows the line reader produced (good, bad and blank)
    good: int = 0
    blank: int = 0
    rejected: int = 0
    keys: int = 0
    repeats: int = 0  # good lines whose request id an earlier line of the file already has
    dup_ids: int = 0  # request ids on more than one good line
    refused: int = 0  # lines the line reader itself refused (encoding, length)
    bad_lines: list[BadLine] = field(default_factory=list)
    by_reason: dict[str, int] = field(default_factory=dict)


# ------------------------------------------------------------------------------------ entry point
def import_file(
    store: Store,
    path: str | os.PathLike[str],
    *,
    fmt: str = "auto",
    default_timestamp: datetime | None = None,
    max_bad_lines: int = 10,
    progress: Progress | None = None,
) -> FileReport:
    """Import one request-log file; raises InvalidArgument(path, ...) when it cannot be read at all."""
    started = time.monotonic()
    source = Path(path)
    _check_readable(source)
    chosen = resolve_format(source, fmt)
    report = FileReport(path=str(source), format=chosen.name)
    store.ensure_ready()
    # Staged files go beside the database (on its disk, not a RAM-backed /tmp) and vanish after.
    beside = None if store.db.in_memory else Path(store.db.path).parent
    if beside is not None:
        beside.mkdir(parents=True, exist_ok=True)
        _sweep_stale_staging(beside)
    with tempfile.TemporaryDirectory(prefix=f"{_STAGING_PREFIX}{os.getpid()}-", dir=beside) as tmp:
        stage_path = os.path.join(tmp, "stage.duckdb")
        mark = time.monotonic()
        staged = _stage(source, chosen, stage_path, tmp, default_timestamp, max_bad_lines, progress, report.phases)
        report.phases["stage"] = time.monotonic() - mark
        report.lines = staged.accepted + staged.refused
        report.blank = staged.blank
        report.rejected = staged.rejected
        report.bad_lines = staged.bad_lines
        report.rejected_by_reason = staged.by_reason
        mark = time.monotonic()
        _merge(store, stage_path, source, chosen, staged, report, progress)
        report.phases["merge"] = time.monotonic() - mark
    report.seconds = time.monotonic() - started
    return report


_STAGING_PREFIX = ".costhawk-import-"


def _sweep_stale_staging(folder: Path) -> None:
    """Remove staging folders left by imports that were killed (their process no longer exists)."""
    if os.name != "posix":  # os.kill(pid, 0) only probes on POSIX
        return
    for stale in folder.glob(f"{_STAGING_PREFIX}*"):
        pid = stale.name[len(_STAGING_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(stale, ignore_errors=True)
        except OSError:
            continue  # alive (or not ours to probe)


def resolve_format(source: Path, fmt: str) -> Format:
    """The named format, or for `auto` the one the file's suffix or first non-empty line reveals."""
    if fmt != "auto":
        if fmt not in FORMATS:
            raise InvalidArgument("--format", f"unknown format {fmt!r}; choose from auto, {', '.join(FORMATS)}")
        return FORMATS[fmt]
    by_suffix = by_extension(source.name)
    if by_suffix is not None:
        return by_suffix
    first = _first_line(source)
    if first is None:
        return FORMATS["costhawk"]  # an empty file imports nothing whatever its format
    try:
        parsed = json.loads(first)
    except ValueError:
        if "request_id" in first and any(sep in first for sep in (",", ";", "\t", "|")):
            return FORMATS["csv"]
        raise InvalidArgument(
            str(source), "the first line is neither JSON nor a CSV header; pass --format to say what it is"
        ) from None
    found = by_content(parsed)
    if found is None:
        raise InvalidArgument(
            str(source),
            "cannot tell the format from the first line (no request_id/input_tokens, no OpenAI or Anthropic "
            f"usage); pass --format ({', '.join(FORMATS)})",
        )
    return found


def _check_readable(source: Path) -> None:
    if not source.exists():
        raise InvalidArgument(str(source), "no such file")
    if source.is_dir():
        raise InvalidArgument(str(source), "is a directory, not a file")
    try:
        with source.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise InvalidArgument(str(source), f"cannot read: {exc.strerror or exc}") from None


def _is_gzip(source: Path) -> bool:
    with source.open("rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def _first_line(source: Path) -> str | None:
    """The first non-blank line (at most 64 MiB of the file is looked at)."""
    opener: Any = gzip.open if _is_gzip(source) else open
    try:
        with opener(source, "rb") as handle:
            budget = MAX_LINE_BYTES
            for raw in handle:
                budget -= len(raw)
                text = raw.decode("utf-8", errors="replace").strip().lstrip("\ufeff")
                if text:
                    return str(text)
                if budget <= 0:
                    break
    except (OSError, EOFError) as exc:
        raise InvalidArgument(str(source), f"cannot read: {exc}") from None
    return None


# ---------------------------------------------------------------------------------------- staging
_READER_REASONS = {
    "INVALID ENCODING": "not valid UTF-8 text",
    "LINE SIZE OVER MAXIMUM": f"longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB",
    "MISSING COLUMNS": "fewer columns than the header",
    "TOO MANY COLUMNS": "more columns than the header",
    "UNQUOTED VALUE": "a quote inside an unquoted value",
    "INVALID STATE": "not valid CSV",
}


@dataclass(frozen=True)
class _Reader:
    """How rows come out of one file: the reader's SELECT and a hash that identifies a line's content."""

    rows: str  # SELECT over read_csv(...) with the reader's columns
    row_hash: str
    header: int  # lines before the first row
    columns: tuple[str, ...] = ()  # a CSV file's header


def _stage(
    source: Path,
    fmt: Format,
    stage_path: str,
    tmp: str,
    default_timestamp: datetime | None,
    max_bad_lines: int,
    progress: Progress | None,
    phases: dict[str, float],
) -> _Staged:
    """Read, validate and stage the file into `stage_path`; returns counts and the first bad lines.

    The main query runs in parallel and numbers nothing (a line counter would run on one thread).
    Line numbers are needed only for bad lines and for request ids repeated in the file, so only
    then does a second, light pass number the lines and find those by content hash.
    """
    import duckdb

    conn = duckdb.connect(stage_path)
    try:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute("SET temp_directory = ?", [tmp])
        conn.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        # Row order in the staged table means nothing, and unordered inserts write row groups as
        # they fill (in parallel) instead of all at checkpoint.
        conn.execute("SET preserve_insertion_order = false")
        # The staged file lives for seconds: spend disk, not CPU, on it.
        conn.execute("SET force_compression = 'uncompressed'")
        conn.execute("SET enable_progress_bar = true")
        conn.execute("SET enable_progress_bar_print = false")
        params: dict[str, object] = {"path": str(source), "compression": "gzip" if _is_gzip(source) else "none"}
        if fmt.reader == "csv":
            params["delim"] = _csv_delimiter(_first_line(source) or "")
            columns = _csv_columns(source, str(params["delim"]))
            _require_csv_columns(source, fmt, columns, default_timestamp is not None)
            reader = _csv_reader(columns, rejects=True)
            numbering = _csv_reader(columns, rejects=False)
        else:
            params["delim"] = _DELIMITER
            reader = _json_reader(rejects=True)
            numbering = _json_reader(rejects=False)
        with _watch(conn, f"reading {source.stat().st_size / 1e6:,.0f} MB", progress):
            mark = time.monotonic()
            # Optimistic first: most files have no malformed line, and skipping json_valid() saves
            # a tenth of the work. A malformed line makes the query fail; then validate every line.
            for validate_json in (False, True) if fmt.reader == "json_lines" else (True,):
                sql, reasons = staging_sql(fmt, reader, validate_json=validate_json)
                bound = {**params, "default_ts": default_timestamp} if "$default_ts" in sql else params
                try:
                    conn.execute(f"CREATE OR REPLACE TABLE staged AS {sql}", bound)
                    break
                except duckdb.Error as exc:
                    if not validate_json and "Malformed JSON" in str(exc):
                        conn.execute("DROP TABLE IF EXISTS reader_rejects")
                        conn.execute("DROP TABLE IF EXISTS reader_scans")
                        continue
                    raise InvalidArgument(str(source), f"cannot read: {_first_line_of(exc)}") from None
            phases["read"] = time.monotonic() - mark
        with _watch(conn, "checking request ids", progress):
            staged = _count(conn)
        if staged.rejected - staged.refused or staged.dup_ids:
            with _watch(conn, "numbering lines", progress):
                mark = time.monotonic()
                _number(conn, numbering, params)
                phases["number"] = time.monotonic() - mark
        else:
            conn.execute("CREATE TABLE repeats (rid BIGINT)")
        _report_bad_lines(conn, staged, reasons, reader.header, max_bad_lines)
        mark = time.monotonic()
        conn.close()  # checkpoints whatever is still in memory
        phases["checkpoint"] = time.monotonic() - mark
        return staged
    finally:
        conn.close()


def _first_line_of(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _read_options(rejects: bool) -> str:
    # Lines the reader cannot take (invalid UTF-8, too long) are skipped, and recorded on the first pass.
    recorded = (
        "store_rejects = true, rejects_table = 'reader_rejects', rejects_scan = 'reader_scans', " if rejects else ""
    )
    return (
        f"ignore_errors = true, {recorded}max_line_size = {MAX_LINE_BYTES}, "
        f"buffer_size = {2 * MAX_LINE_BYTES}, compression = $compression"
    )


def _json_reader(*, rejects: bool) -> _Reader:
    # One column: with two, DuckDB would drop blank lines and their numbers with them.
    # `new_line = '\r\n'` ends lines at "\r\n" *or* "\n" (the tests check LF, CRLF and mixed
    # files); the default would count each "\r\n" of a mixed file as two lines.
    rows = (
        "SELECT text FROM read_csv($path, columns = {'text': 'VARCHAR'}, delim = $delim, quote = '', "
        "escape = '', header = false, auto_detect = false, strict_mode = false, new_line = '\\r\\n', "
        f"{_read_options(rejects)})"
    )
    return _Reader(rows=rows, row_hash="hash(text)", header=0)


def _csv_columns(source: Path, delimiter: str) -> list[str]:
    """The header row's column names (read here: DuckDB's sniffer is thrown by ragged rows)."""
    header = _first_line(source) or ""
    return next(csv.reader([header], delimiter=delimiter), [])


def _csv_delimiter(header: str) -> str:
    """The header's separator: the most frequent of , ; tab | (DuckDB's sniffer is thrown by ragged rows)."""
    counts = {sep: header.count(sep) for sep in (",", ";", "\t", "|")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def _csv_reader(columns: list[str], *, rejects: bool) -> _Reader:
    types = "{" + ", ".join(f"{_quote(c)}: 'VARCHAR'" for c in columns) + "}"
    rows = (
        f"SELECT * FROM read_csv($path, columns = {types}, header = true, auto_detect = false, delim = $delim, "
        f"quote = '\"', escape = '\"', {_read_options(rejects)})"
    )
    return _Reader(
        rows=rows, row_hash=f"hash({', '.join(_ident(c) for c in columns)})", header=1, columns=tuple(columns)
    )


def _require_csv_columns(source: Path, fmt: Format, columns: list[str], has_default_ts: bool) -> None:
    """A CSV whose header lacks a required column is not a request log at all."""
    have = {c.strip().lower() for c in columns}
    needed = ["request_id", "model", "input_tokens", "output_tokens"] + ([] if has_default_ts else ["timestamp"])
    by_name = {f.name: f for f in fmt.fields}
    lacking = [n for n in needed if n in by_name and not any(p[0].lower() in have for p in by_name[n].paths)]
    if lacking:
        raise InvalidArgument(
            str(source),
            f"the CSV header lacks {', '.join(lacking)} (it has {', '.join(columns) or 'no columns'}); "
            "`costhawk-mcp import --help` lists the canonical columns",
        )


def staging_sql(fmt: Format, reader: _Reader, *, validate_json: bool = True) -> tuple[str, list[str]]:
    """The query staging one file, and the reasons its `problem` column indexes (1-based).

    Output columns: blank, problem (index into the reasons), got (the offending value), h (the
    line's content hash), the staging columns, key_hint (the redacted hint of a key-like id).
    `validate_json=False` skips json_valid() on lines starting with "{" (a tenth of the work):
    the query then fails on a malformed one, and the caller runs it again validating.
    """
    if fmt.reader == "csv":
        lines = f"SELECT *, {reader.row_hash} AS h, false AS blank, CAST(NULL AS VARCHAR) AS shape FROM ({reader.rows})"
        raws = ", ".join(part for f in fmt.fields for part in _raw_csv(f, reader))
        raw = f"SELECT h, blank, shape, {raws} FROM lines"
        return _validated_sql(fmt, f"lines AS ({lines}), raw AS ({raw})")
    # CASE, not OR/AND: DuckDB may evaluate both sides of a conjunction on every row, and trim()
    # copies the line. Only lines that do not start with "{" are trimmed.
    blank = "CASE WHEN text IS NULL THEN true WHEN starts_with(text, '{') THEN false ELSE trim(text) = '' END"
    braced = "(starts_with(text, '{') OR starts_with(ltrim(text), '{'))"
    shape = (
        f"CASE WHEN blank THEN NULL WHEN NOT json_valid(text) THEN 'json' WHEN {braced} THEN NULL ELSE 'object' END"
        if validate_json
        else f"CASE WHEN blank THEN NULL WHEN {braced} THEN NULL WHEN NOT json_valid(text) THEN 'json' ELSE 'object' END"
    )
    paths = _all_paths(fmt.fields)
    listed = "[" + ", ".join(_quote(_json_path(p)) for p in paths) + "]"
    ctes = (
        f"lines AS (SELECT text, {blank} AS blank FROM ({reader.rows})), "
        f"parsed AS (SELECT text, blank, {shape} AS shape FROM lines), "
        # One parse per line: every path at once, as text (json_extract_string is about twice as
        # fast as json_transform into a struct).
        "fields AS (SELECT text, blank, shape, CASE WHEN NOT blank THEN hash(text) END AS h, "
        f"CASE WHEN shape IS NULL AND NOT blank THEN json_extract_string(text, {listed}) END AS v FROM parsed), "
        f"raw AS (SELECT h, blank, shape, {', '.join(_raw_json(f, paths) for f in fmt.fields)} FROM fields)"
    )
    return _validated_sql(fmt, ctes)


def _all_paths(fields: tuple[Field, ...]) -> list[tuple[str, ...]]:
    """Every distinct JSON path the fields read, in a stable order."""
    seen: dict[tuple[str, ...], None] = {}
    for f in fields:
        for path in f.paths:
            seen.setdefault(path, None)
    return list(seen)


def _money_spec(path: tuple[str, ...]) -> dict[str, Any]:
    spec: dict[str, Any] = {path[-1]: "DECIMAL(38, 15)"}
    for key in reversed(path[:-1]):
        spec = {key: spec}
    return spec


def _ident(name: str) -> str:
    if '"' in name:
        raise ValueError(f"bad identifier {name!r}")
    return f'"{name}"'


def _quote(text: str | dict[str, Any]) -> str:
    value = text if isinstance(text, str) else json.dumps(text, separators=(",", ":"))
    return "'" + value.replace("'", "''") + "'"


def _json_path(path: tuple[str, ...]) -> str:
    return "$." + ".".join(_ident(k) for k in path)


def _raw_json(f: Field, paths: list[tuple[str, ...]]) -> str:
    """The field's raw text: the first path present. Money also gets its exact DECIMAL value."""
    items = [f"v[{paths.index(p) + 1}]" for p in f.paths]
    if f.kind == "money":
        text = items[0] if len(items) == 1 else f"coalesce({', '.join(items)})"
        # json_extract_string renders a number through a double, so the amount is read again as
        # DECIMAL from the line itself: for a top-level key, the number text after the key, used
        # when it denotes the very number the parser saw (else the key appeared elsewhere first);
        # otherwise (and for strings such as "0.5") json_transform parses the line into DECIMAL.
        exact = [f"json_transform(text, {_quote(_money_spec(p))}).{'.'.join(_ident(k) for k in p)}" for p in f.paths]
        value = exact[0] if len(exact) == 1 else f"coalesce({', '.join(exact)})"
        if len(f.paths) == 1 and len(f.paths[0]) == 1:
            pattern = _quote(re.escape(json.dumps(f.paths[0][0])) + r"\s*:\s*(-?[0-9][0-9.eE+-]*)")
            number = f"regexp_extract(text, {pattern}, 1)"
            value = (
                f"CASE WHEN TRY_CAST({number} AS DOUBLE) = TRY_CAST({text} AS DOUBLE) "
                f"THEN TRY_CAST({number} AS DECIMAL(38, 15)) ELSE {value} END"
            )
        return (
            f"{text} AS {_ident(f.name + '__text')}, "
            f"CASE WHEN {text} IS NOT NULL THEN {value} END AS {_ident(f.name + '__raw')}"
        )
    # Only model names are trimmed (they are looked up in the catalog); trim() costs on every row.
    cleaned = [f"nullif(trim({a}), '')" if f.name == "model" else f"nullif({a}, '')" for a in items]
    value = cleaned[0] if len(cleaned) == 1 else f"coalesce({', '.join(cleaned)})"
    return f"{value} AS {_ident(f.name + '__raw')}"


def _raw_csv(f: Field, reader: _Reader) -> list[str]:
    by_name = {c.strip().lower(): c for c in reader.columns}
    cells = [f"nullif(trim({_ident(by_name[p[0].lower()])}), '')" for p in f.paths if p[0].lower() in by_name]
    value = "CAST(NULL AS VARCHAR)" if not cells else cells[0] if len(cells) == 1 else f"coalesce({', '.join(cells)})"
    if f.kind == "money":
        return [
            f"TRY_CAST({value} AS DECIMAL(38, 15)) AS {_ident(f.name + '__raw')}",
            f"CASE WHEN TRY_CAST({value} AS DECIMAL(38, 15)) IS NULL THEN {value} END AS {_ident(f.name + '__text')}",
        ]
    return [f"{value} AS {_ident(f.name + '__raw')}"]


def _kind_sql(f: Field) -> tuple[str | None, str, str]:
    """(conversion of the raw value, typed value, bad condition) for a field.

    The conversion is named `<field>__cv`; the typed value `<field>`, which the bad condition may
    use. CASE chains rather than AND/OR, so each row stops at its first answer.
    """
    raw = _ident(f.name + "__raw")
    cv = _ident(f.name + "__cv")
    missing_or_typed = f"({raw} IS NOT NULL AND {_ident(f.name)} IS NULL)"
    if f.kind == "text":
        return None, raw, "false"
    if f.kind == "count":
        # A JSON integer renders as its digits; 1000.0 (a whole double) as "1000.0"; 1.5, -3, 1e16
        # and strings such as "12k" fail one test or another.
        value = (
            f"CASE WHEN {cv} IS NULL OR {cv} < 0 OR {cv} > {MAX_TOKENS} THEN NULL "
            f"WHEN CAST({cv} AS VARCHAR) = {raw} THEN {cv} WHEN CAST({cv} AS VARCHAR) || '.0' = {raw} THEN {cv} END"
        )
        return f"TRY_CAST({raw} AS BIGINT)", value, missing_or_typed
    if f.kind == "flag":
        conversion = (
            f"CASE lower({raw}) WHEN 'true' THEN true WHEN 'false' THEN false WHEN '1' THEN true WHEN '0' THEN false "
            "WHEN 'yes' THEN true WHEN 'no' THEN false END"
        )
        return conversion, cv, missing_or_typed
    if f.kind == "number":
        return f"TRY_CAST({raw} AS DOUBLE)", f"CASE WHEN isfinite({cv}) AND {cv} >= 0 THEN {cv} END", missing_or_typed
    if f.kind == "money":
        text = _ident(f.name + "__text")
        bad = f"coalesce({raw} < 0 OR {text} IN ('true', 'false') OR ({raw} IS NULL AND {text} IS NOT NULL), false)"
        return None, f"CASE WHEN NOT {bad} THEN {raw} END", bad
    if f.kind == "time":
        # TIMESTAMP reads a trailing Z but ignores other offsets, which need TIMESTAMPTZ (twice the cost).
        conversion = (
            f"CASE WHEN ends_with({raw}, 'Z') THEN TRY_CAST({raw} AS TIMESTAMP) "
            f"ELSE CAST(TRY_CAST({raw} AS TIMESTAMPTZ) AS TIMESTAMP) END"
        )
        return conversion, f"CASE WHEN substr({raw}, 5, 1) = '-' THEN {cv} END", missing_or_typed
    if f.kind == "epoch":
        value = f"CASE WHEN {cv} >= 0 AND {cv} < 1e11 THEN CAST(to_timestamp({cv}) AS TIMESTAMP) END"
        return f"TRY_CAST({raw} AS DOUBLE)", value, missing_or_typed
    raise ValueError(f"unknown field kind {f.kind!r}")


_KIND_RULE = {
    "count": "must be a whole number from 0 to 1e15",
    "flag": "must be true or false",
    "number": "must be a number ≥ 0",
    "money": "must be a number of US dollars ≥ 0",
    "time": "must be an RFC 3339 date-time such as 2026-11-27T09:30:00Z",
    "epoch": "must be Unix seconds",
}


def _secret(column: str) -> str:
    return (
        f"(starts_with({column}, 'sk-ant-') OR (starts_with({column}, 'sk-') AND length({column}) > 20) "
        f"OR (starts_with({column}, 'AIza') AND length({column}) >= 30) "
        f"OR ((starts_with({column}, 'xai-') OR starts_with({column}, 'gsk_')) AND length({column}) > 20))"
    )


def _hint(column: str) -> str:
    return f"regexp_extract({column}, '{_SECRET_PREFIXES}') || '…' || right({column}, 4)"


def _validated_sql(fmt: Format, ctes: str) -> tuple[str, list[str]]:
    """Typed columns and the first problem of every line, on top of the `raw` CTE of field values."""
    conversions: list[str] = []
    typed: list[str] = []
    flags: list[str] = []
    checks: list[tuple[str, str, str]] = [  # (condition, reason, offending value)
        ("shape = 'json'", "not valid JSON", "NULL"),
        ("shape = 'object'", "not a JSON object", "NULL"),
    ]
    for f in fmt.fields:
        conversion, value, bad = _kind_sql(f)
        if conversion is not None:
            conversions.append(f"{conversion} AS {_ident(f.name + '__cv')}")
        typed.append(f"{value} AS {_ident(f.name)}")
        if f.kind != "text":
            flags.append(f"{bad} AS {_ident(f.name + '__bad')}")
            raw_text = f"CAST({_ident(f.name + '__raw')} AS VARCHAR)"
            shown = f"coalesce({_ident(f.name + '__text')}, {raw_text})" if f.kind == "money" else raw_text
            checks.append((_ident(f.name + "__bad"), f"{f.display}: {_KIND_RULE[f.kind]}", shown))
    checks += [_check(c) for c in fmt.failures]
    checks += [(f"{_ident(col)} IS NULL", fmt.missing.get(col, reason), "NULL") for col, reason in REQUIRED.items()]
    checks += [_check(c) for c in fmt.checks]

    field_names = {f.name for f in fmt.fields}
    missing_cols = [c for c in STAGING_OUT if c not in fmt.columns]
    if missing_cols:
        raise ValueError(f"format {fmt.name} maps no expression to {', '.join(missing_cols)}")
    replaced = [f"{expr} AS {_ident(col)}" for col, expr in fmt.columns.items() if col in field_names]
    added = [f"{expr} AS {_ident(col)}" for col, expr in fmt.columns.items() if col not in field_names]
    replace_sql = f" REPLACE ({', '.join(replaced)})" if replaced else ""

    problem = " ".join(f"WHEN {cond} THEN {i}" for i, (cond, _, _) in enumerate(checks, start=1))
    got = " ".join(f"WHEN {i} THEN {shown}" for i, (_, _, shown) in enumerate(checks, start=1) if shown != "NULL")
    outputs = [
        f"CASE WHEN {_secret(c)} THEN 'key_' || left(sha256({c}), {SECRET_ID_HEX}) ELSE {c} END AS {c}"
        if c == "api_key_id"
        else f"CASE WHEN {_secret(c)} THEN {_hint(c)} ELSE {c} END AS {c}"
        if c == "key_name"
        else _ident(c)
        for c in STAGING_OUT
    ]
    sql = (
        f"WITH {ctes}, "
        f"converted AS (SELECT *{', ' if conversions else ''}{', '.join(conversions)} FROM raw), "
        f"typed AS (SELECT *, {', '.join(typed)} FROM converted), "
        f"flagged AS (SELECT *{', ' if flags else ''}{', '.join(flags)} FROM typed), "
        f"cols AS (SELECT *{replace_sql}{', ' if added else ''}{', '.join(added)} FROM flagged), "
        f"judged AS (SELECT *, CASE WHEN blank THEN NULL {problem} END AS problem FROM cols) "
        f"SELECT blank, CAST(problem AS SMALLINT) AS problem, "
        f"CASE WHEN problem IS NOT NULL THEN CAST(CASE problem {got} END AS VARCHAR) END AS got, h, "
        f"{', '.join(outputs)}, CASE WHEN {_secret('api_key_id')} THEN {_hint('api_key_id')} END AS key_hint "
        "FROM judged"
    )
    return sql, [reason for _, reason, _ in checks]


def _check(c: Check) -> tuple[str, str, str]:
    return (f"({c.condition})", c.reason, f"CAST({c.got} AS VARCHAR)" if c.got else "NULL")


def _count(conn: Connection) -> _Staged:
    staged = _Staged()
    row = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE blank), count(problem), "
        "count(*) FILTER (WHERE key_hint IS NOT NULL AND problem IS NULL AND NOT blank) FROM staged"
    ).fetchone()
    staged.accepted, staged.blank, bad, staged.keys = (int(v) for v in row)
    staged.refused = int(conn.execute("SELECT count(DISTINCT line) FROM reader_rejects").fetchone()[0])
    staged.rejected = bad + staged.refused
    staged.good = staged.accepted - staged.blank - bad
    conn.execute(
        "CREATE TABLE dup_ids AS SELECT request_id FROM staged WHERE problem IS NULL AND NOT blank "
        "GROUP BY request_id HAVING count(*) > 1"
    )
    staged.dup_ids = int(conn.execute("SELECT count(*) FROM dup_ids").fetchone()[0])
    return staged


def _number(conn: Connection, numbering: _Reader, params: dict[str, object]) -> None:
    """Number the lines that need it (bad ones, repeated request ids) and set aside the repeats.

    `numbered` maps a content hash to the line numbers (k: the reader's row number) holding it.
    First line wins: of the good rows sharing a request id, every one but the earliest is a repeat.
    """
    conn.execute(
        "CREATE TABLE wanted AS SELECT DISTINCT h FROM staged "
        "WHERE problem IS NOT NULL OR (NOT blank AND request_id IN (SELECT request_id FROM dup_ids))"
    )
    conn.execute(
        f"CREATE TABLE numbered AS SELECT k, h FROM (SELECT row_number() OVER () AS k, {numbering.row_hash} AS h "
        f"FROM ({numbering.rows})) WHERE h IN (SELECT h FROM wanted)",
        params,
    )
    conn.execute(
        """
        CREATE TABLE repeats AS
        WITH firsts AS (SELECT h, min(k) AS k FROM numbered GROUP BY h),
        candidates AS (
            SELECT s.rowid AS rid, s.request_id, f.k
            FROM staged AS s JOIN firsts AS f USING (h)
            WHERE s.problem IS NULL AND NOT s.blank AND s.request_id IN (SELECT request_id FROM dup_ids)
        )
        SELECT rid FROM candidates QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY k, rid) > 1
        """
    )


def _report_bad_lines(conn: Connection, staged: _Staged, reasons: list[str], header: int, limit: int) -> None:
    """The first bad lines with their true line numbers, and rejections counted per reason."""
    rejects = [
        (int(r[0]), _READER_REASONS.get(str(r[1]), str(r[1]).lower()))
        for r in conn.execute("SELECT line, min(error_type) FROM reader_rejects GROUP BY line ORDER BY line").fetchall()
    ]
    reject_lines = [line for line, _ in rejects]

    def true_line(k: int) -> int:
        # The k-th row the reader produced sits after every refused line r_i with r_i - i < k + header.
        return header + k + sum(1 for i, r in enumerate(reject_lines, start=1) if r - header - i < k)

    bad: list[BadLine] = [BadLine(line, reason) for line, reason in rejects[:limit]]
    if staged.rejected > staged.refused:
        rows = conn.execute(
            "SELECT DISTINCT n.k, s.problem, s.got FROM staged AS s JOIN numbered AS n USING (h) "
            "WHERE s.problem IS NOT NULL ORDER BY n.k LIMIT ?",
            [limit],
        ).fetchall()
        bad += [
            BadLine(true_line(int(k)), reasons[int(p) - 1] + (f", got {_clip(str(got))}" if got is not None else ""))
            for k, p, got in rows
        ]
    staged.bad_lines = sorted(bad, key=lambda b: b.line)[:limit]
    by_reason: dict[str, int] = {}
    for p, count in conn.execute(
        "SELECT problem, count(*) FROM staged WHERE problem IS NOT NULL GROUP BY problem"
    ).fetchall():
        by_reason[reasons[int(p) - 1]] = int(count)
    for _, reason in rejects:
        by_reason[reason] = by_reason.get(reason, 0) + 1
    staged.by_reason = dict(sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0])))
    staged.repeats = int(conn.execute("SELECT count(*) FROM repeats").fetchone()[0])


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------------------------------ merge
def _merge(
    store: Store,
    stage_path: str,
    source: Path,
    fmt: Format,
    staged: _Staged,
    report: FileReport,
    progress: Progress | None,
) -> None:
    columns = ", ".join(("0 AS line", *STAGING_OUT))
    with store.writing() as conn:
        conn.execute("SET preserve_insertion_order = false")
        conn.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        conn.execute("SET enable_progress_bar = true")
        conn.execute("SET enable_progress_bar_print = false")
        conn.execute("ATTACH ? AS costhawk_stage (READ_ONLY)", [stage_path])
        conn.execute(
            f"CREATE TEMP VIEW costhawk_staged AS SELECT {columns} FROM costhawk_stage.staged AS s "
            "WHERE problem IS NULL AND NOT blank "
            "AND NOT EXISTS (SELECT 1 FROM costhawk_stage.repeats AS r WHERE r.rid = s.rowid)"
        )
        import_id = store.start_import(conn, source=str(source.resolve()), fmt=fmt.name, sha256=None)
        with _watch(conn, f"merging {staged.good - staged.repeats:,} requests", progress):
            merged = store.merge_staged_requests(conn, "costhawk_staged", import_id, unique=True)
        result = replace(merged, duplicates=merged.duplicates + staged.repeats)
        if staged.keys:
            _record_key_hints(conn, import_id)
        store.finish_import(conn, result, lines_read=report.lines, rejected=report.rejected)
        cost, unpriced, models = conn.execute(
            "SELECT coalesce(sum(cost_usd), 0), count(*) FILTER (WHERE cost_usd IS NULL), "
            "list(DISTINCT model ORDER BY model) FILTER (WHERE cost_usd IS NULL) FROM requests WHERE import_id = ?",
            [import_id],
        ).fetchone()
        conn.execute("DROP VIEW costhawk_staged")
        conn.execute("DETACH costhawk_stage")
    report.import_id = import_id
    report.inserted = result.inserted
    report.duplicates = result.duplicates
    report.cost_usd = Decimal(cost)
    report.unpriced_requests = int(unpriced)
    report.unpriced_models = [str(m) for m in models or []]


def _record_key_hints(conn: Connection, import_id: int) -> None:
    """Key material never reaches `requests`; its hashed id, name and redacted hint go to `api_keys`."""
    conn.execute(
        """
        INSERT INTO api_keys (provider, api_key_id, name, redacted_hint, updated_at)
        SELECT r.provider, r.api_key_id, any_value(r.key_name), any_value(h.key_hint), ?
        FROM requests AS r
        JOIN (SELECT DISTINCT api_key_id, key_hint FROM costhawk_stage.staged
              WHERE key_hint IS NOT NULL AND problem IS NULL AND NOT blank) AS h USING (api_key_id)
        WHERE r.import_id = ?
        GROUP BY r.provider, r.api_key_id
        ON CONFLICT (provider, api_key_id) DO UPDATE SET
            name = coalesce(excluded.name, api_keys.name),
            redacted_hint = excluded.redacted_hint,
            updated_at = excluded.updated_at
        """,
        [utcnow(), import_id],
    )


@contextmanager
def _watch(conn: Connection, stage: str, progress: Progress | None) -> Iterator[None]:
    """Report DuckDB's own progress of the running statement, polled from a thread."""
    if progress is None:
        yield
        return
    done = threading.Event()

    def poll() -> None:
        while not done.wait(0.1):
            value = conn.query_progress()
            progress(stage, value / 100 if value >= 0 else None)

    progress(stage, None)
    thread = threading.Thread(target=poll, name=f"costhawk-{stage}-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        progress(stage, 1.0)
