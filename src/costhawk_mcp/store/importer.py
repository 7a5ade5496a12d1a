"""Bulk import of request logs: DuckDB reads, validates and stages; the store merges.

One file is one import, in two steps:

1. **Stage** (no lock on the costhawk database). One parallel DuckDB query reads the file,
   checks every value in SQL and writes typed rows (or, per record, the index of its first
   problem) to a temporary DuckDB database beside the store. Two ways, one result:
   * the **fast path**, tried first for uncompressed JSON Lines: DuckDB's bulk `read_json`
     parses the file, every field read as text so nothing is coerced (`true`, `"12k"`, `1.5`
     arrive as written), and the same SQL validates. Its result is kept only for a clean file:
     as many records as the file has lines (read_json silently drops blank lines), no value
     rejected (the first one aborts the query), no request id twice, and no value read_json
     renders differently from the line path: a number in exponent form in a text field, or an
     amount of money of $4 or more or with more than 15 decimals, whose exact digits only the
     line path recovers (read_json reads JSON numbers through a double). Otherwise the file
     takes the line path, which then decides and reports.
   * the **line path**: DuckDB's CSV reader splits lines (a "delimiter" JSON cannot contain, no
     quoting, `\r\n` or `\n` ending a line, blank lines kept); each line is parsed once
     (`json_extract_string` of every path the format reads, import_formats.py, or for OTLP
     exports `json_transform` and an unnest of every span); lines the reader itself refuses
     (invalid UTF-8, longer than `MAX_LINE_BYTES`) come from its rejects table with their line
     numbers. Records that are not requests (a format's `skips`) are counted by reason.
2. **Merge** (one write transaction: the only time other processes wait). The staged file is
   attached read-only and `Store.merge_staged_requests` inserts the request ids not stored yet,
   priced at the price of their day. Re-importing a file inserts nothing; a killed import
   leaves all of the file or none of it.

Line numbers cost: a `row_number()` over the reader runs on one thread. So the main query numbers
nothing and keeps a hash of each line; only when a file has bad lines or repeats a request id
does a second, light pass number the lines and find those by hash. First line wins among
repeats (within a line, the first span), decided there too, outside the lock.

Validation rules (also in `costhawk-mcp import --help`):
* token counts: whole numbers from 0 to 10^15, as JSON numbers (`1000`, `1000.0`) or digit-only
  strings (`"1000"`, as BigQuery exports INT64); `1.5`, `-3`, `true` and `"12k"` are rejected.
* timestamps: RFC 3339 (`2026-11-27T09:30:00Z`, `...+02:00`); without an offset, UTC; OpenAI's
  `created` Unix seconds when the line has no `timestamp`; OTLP's Unix nanoseconds.
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
import subprocess
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
    """A rejected line (for an OTLP export, a span in it: the reason starts with which) and why."""

    line: int
    reason: str


@dataclass
class FileReport:
    """What importing one file did. For OTLP exports the records are spans: `rejected` counts bad
    spans and bad lines, `skipped` the spans that are no request (by reason)."""

    path: str
    format: str
    lines: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    blank: int = 0
    spans: int = 0  # spans read (OTLP exports only)
    bad_spans: int = 0  # of `rejected`, spans (the rest are whole lines)
    skipped: int = 0
    bad_lines: list[BadLine] = field(default_factory=list)
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    cost_usd: Decimal = Decimal(0)
    unpriced_requests: int = 0
    unpriced_models: list[str] = field(default_factory=list)
    import_id: int | None = None
    seconds: float = 0.0
    fast: bool = False  # staged by the fast path (read_json), not the line path
    phases: dict[str, float] = field(default_factory=dict)  # wall seconds per phase (stage, merge, ...)


@dataclass
class _Staged:
    accepted: int = 0  # lines the line reader produced (good, bad and blank)
    spans: int = 0
    bad_spans: int = 0
    good: int = 0  # records to merge (before removing repeats)
    blank: int = 0
    rejected: int = 0
    skipped: int = 0
    keys: int = 0
    repeats: int = 0  # good records whose request id an earlier record of the file already has
    dup_ids: int = 0  # request ids on more than one good record
    refused: int = 0  # lines the line reader itself refused (encoding, length)
    fast: bool = False  # staged by the fast path: every row is a good record, no bookkeeping columns
    bad_lines: list[BadLine] = field(default_factory=list)
    by_reason: dict[str, int] = field(default_factory=dict)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)


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
        report.spans = staged.spans
        report.bad_spans = staged.bad_spans
        report.blank = staged.blank
        report.rejected = staged.rejected
        report.skipped = staged.skipped
        report.bad_lines = staged.bad_lines
        report.rejected_by_reason = staged.by_reason
        report.skipped_by_reason = staged.skipped_by_reason
        report.fast = staged.fast
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
        if first.startswith(("{", "[")):
            raise InvalidArgument(
                str(source),
                "the first line is not a whole JSON value: the file looks like pretty-printed JSON, and "
                "import reads JSON Lines (one object, or one OTLP export request, per line); convert it "
                "with `jq -c . FILE > FILE.jsonl`",
            ) from None
        raise InvalidArgument(
            str(source), "the first line is neither JSON nor a CSV header; pass --format to say what it is"
        ) from None
    found = by_content(parsed)
    if found is None:
        raise InvalidArgument(
            str(source),
            "cannot tell the format from the first line (no request_id/input_tokens, no OpenAI or Anthropic "
            f"usage, no OTLP resourceSpans); pass --format ({', '.join(FORMATS)})",
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

    The fast path first when it applies; a file it refuses (not clean, or not provably read alike)
    is staged again by the line path, which decides and reports.
    """
    if _fast_path_applies(source, fmt):
        mark = time.monotonic()
        staged = _stage_fast(source, fmt, stage_path, tmp, default_timestamp, progress)
        phases["fast"] = time.monotonic() - mark
        if staged is not None:
            return staged
        _remove_database(stage_path)
    return _stage_lines(source, fmt, stage_path, tmp, default_timestamp, max_bad_lines, progress, phases)


def _staging_connection(stage_path: str, tmp: str) -> Connection:
    import duckdb

    conn = duckdb.connect(stage_path)
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute("SET temp_directory = ?", [tmp])
    conn.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    # Row order in the staged table means nothing, and unordered inserts write row groups as
    # they fill (in parallel) instead of all at checkpoint.
    conn.execute("SET preserve_insertion_order = false")
    # Compressed as usual: writing it uncompressed saves little CPU (strings cost the same to
    # append) and writes six times the bytes (2 GB for 10 million requests), which on a busy disk
    # costs more time than the CPU saved, and the merge reads the compressed file faster.
    conn.execute("SET enable_progress_bar = true")
    conn.execute("SET enable_progress_bar_print = false")
    return conn


def _remove_database(path: str) -> None:
    for leftover in (path, path + ".wal"):
        Path(leftover).unlink(missing_ok=True)


def _stage_lines(
    source: Path,
    fmt: Format,
    stage_path: str,
    tmp: str,
    default_timestamp: datetime | None,
    max_bad_lines: int,
    progress: Progress | None,
    phases: dict[str, float],
) -> _Staged:
    """The line path: every line read as text, parsed by JSON functions (or CSV columns).

    The main query runs in parallel and numbers nothing (a line counter would run on one thread).
    Line numbers are needed only for bad lines and for request ids repeated in the file, so only
    then does a second, light pass number the lines and find those by content hash.
    """
    import duckdb

    conn = _staging_connection(stage_path, tmp)
    try:
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
            for validate_json in (False, True) if fmt.reader != "csv" else (True,):
                sql, reasons, skips = staging_sql(fmt, reader, validate_json=validate_json)
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
        if fmt.usage is not None:
            skips.append(AGGREGATE)
            _mark_aggregates(conn, len(skips))
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
        staged.skipped_by_reason = _tally(conn, "skip", skips)
        staged.skipped = sum(staged.skipped_by_reason.values())
        mark = time.monotonic()
        conn.close()  # checkpoints whatever is still in memory
        phases["checkpoint"] = time.monotonic() - mark
        return staged
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------- fast path
def _fast_path_applies(source: Path, fmt: Format) -> bool:
    """Uncompressed JSON Lines of a format whose records are whole lines and whose paths read_json can type."""
    return (
        fmt.reader == "json_lines"
        and not fmt.skips
        and fmt.usage is None
        and not _is_gzip(source)
        and _struct_spec(_all_paths(fmt.fields)) is not None
    )


def _stage_fast(
    source: Path,
    fmt: Format,
    stage_path: str,
    tmp: str,
    default_timestamp: datetime | None,
    progress: Progress | None,
) -> _Staged | None:
    """Stage a clean file with read_json; None when the file is not clean (see the module docstring)."""
    import duckdb

    sql = fast_staging_sql(fmt)
    bound: dict[str, object] = {"path": str(source)}
    if "$default_ts" in sql:
        bound["default_ts"] = default_timestamp
    counter = _LineCounter(source)
    conn = _staging_connection(stage_path, tmp)
    try:
        with _watch(conn, f"reading {source.stat().st_size / 1e6:,.0f} MB", progress):
            try:
                conn.execute(f"CREATE TABLE staged AS {sql}", bound)
            except duckdb.InterruptException:
                raise
            except duckdb.Error:
                return None  # malformed, a rejected or doubtful value: the line path decides and reports
        rows, keys = conn.execute("SELECT count(*), count(key_hint) FROM staged").fetchone()
        if counter.result() != rows or _has_repeated_ids(conn):
            return None  # a blank line (read_json drops them) or a request id twice: the line path numbers lines
        conn.close()
        return _Staged(accepted=int(rows), good=int(rows), keys=int(keys), fast=True)
    finally:
        counter.stop()
        conn.close()


class _LineCounter:
    """Counts a file's newlines while DuckDB parses it: with `wc -l` where there is one (memchr,
    about six times less CPU than Python's bytes.count), else in a Python thread (DuckDB releases
    the GIL). A last line without its newline counts too."""

    def __init__(self, source: Path) -> None:
        self._source = source
        self._stop = threading.Event()
        self._count: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        wc = shutil.which("wc")
        if wc is not None:
            try:
                with source.open("rb") as handle:
                    self._process = subprocess.Popen(
                        [wc, "-l"], stdin=handle, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
                    )
                return
            except OSError:
                self._process = None
        self._thread = threading.Thread(target=self._run, name="costhawk-line-count", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        lines = 0
        try:
            with self._source.open("rb") as handle:
                while chunk := handle.read(1 << 24):
                    if self._stop.is_set():
                        return
                    lines += chunk.count(b"\n")
        except OSError:
            return
        self._count = lines

    def result(self) -> int | None:
        """The number of lines (None if the file could not be read)."""
        if self._process is not None:
            out, _ = self._process.communicate()
            newlines = int(out.split()[0]) if self._process.returncode == 0 and out.strip() else None
        else:
            assert self._thread is not None
            self._thread.join()
            newlines = self._count
        if newlines is None:
            return None
        try:
            with self._source.open("rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(size - 1, 0))
                last = handle.read(1)
        except OSError:
            return None
        return newlines + (last not in (b"", b"\n"))

    def stop(self) -> None:
        """Give up counting (the fast path is abandoned) and wait for the counter."""
        self._stop.set()
        if self._process is not None and self._process.returncode is None:  # result() not called
            self._process.kill()
            self._process.communicate()  # reaps it and closes its pipe
        if self._thread is not None:
            self._thread.join()


def _has_repeated_ids(conn: Connection) -> bool:
    """Whether a request id occurs twice (grouped by 64-bit hash first: cheaper than by string)."""
    same_hash = "SELECT hash(request_id) FROM staged GROUP BY 1 HAVING count(*) > 1"
    if not conn.execute(f"SELECT count(*) FROM ({same_hash})").fetchone()[0]:
        return False
    repeated = conn.execute(
        f"SELECT count(*) FROM (SELECT request_id FROM staged WHERE hash(request_id) IN ({same_hash}) "
        "GROUP BY request_id HAVING count(*) > 1)"
    ).fetchone()[0]
    return bool(repeated)


# Doubtful values, which the fast path leaves to the line path.
# Money: read_json reads a JSON number through a double d and renders its shortest form s; the
# line path rounds the digits as written, x, to 15 decimals. The fast path keeps v = round(s, 15)
# only when |v| < 4 and rounding s to 18 decimals gives v too (s is within 0.5e-18 of v): x lies
# within one ulp of d, at most 4.4e-16 below 4, so x also rounds to v.
# Text: the two parsers render a number in exponent form (1e+16 against 10000000000000000.0) and
# maybe nested values each their own way; a cheap look at the first character rules out the rest.
_FAST_MONEY_DOUBT = "{v} IS NOT NULL AND NOT coalesce(abs({v}) < 4 AND {v} = {v18}, false)"
_FAST_TEXT_DOUBT = (
    "CASE WHEN ascii({t}) IN (91, 123) THEN true WHEN ascii({t}) BETWEEN 45 AND 57 "
    "AND (contains({t}, 'e') OR contains({t}, 'E')) THEN TRY_CAST({t} AS DOUBLE) IS NOT NULL ELSE false END"
)


def fast_staging_sql(fmt: Format) -> str:
    """The fast path's query: read_json with every path as text, then the line path's validation.

    Output: the staging columns and key_hint. The first rejected or doubtful value aborts the query
    (`error()`), so a file that is not clean costs little before the line path takes it.
    """
    paths = _all_paths(fmt.fields)
    spec = _struct_spec(paths)
    if spec is None:
        raise ValueError(f"format {fmt.name}: a path is both a value and a prefix of another path")
    columns = "{" + ", ".join(f"{_quote(key)}: {_quote(sql_type)}" for key, sql_type in spec.items()) + "}"
    rows = (
        "SELECT * FROM read_json($path, format = 'newline_delimited', records = true, auto_detect = false, "
        f"columns = {columns}, maximum_object_size = {MAX_LINE_BYTES})"
    )
    raws: list[str] = []
    doubts: list[str] = []
    for f in fmt.fields:
        items = [_struct_access(p) for p in f.paths]
        raw = _ident(f.name + "__raw")
        if f.kind == "money":
            text = items[0] if len(items) == 1 else f"coalesce({', '.join(items)})"
            v18 = _ident(f.name + "__v18")
            raws.append(
                f"{text} AS {_ident(f.name + '__text')}, TRY_CAST({text} AS DECIMAL(38, 15)) AS {raw}, "
                f"TRY_CAST({text} AS DECIMAL(38, 18)) AS {v18}"
            )
            doubts.append(_FAST_MONEY_DOUBT.format(v=raw, v18=v18))
            continue
        cleaned = [f"nullif(trim({a}), '')" if f.name == "model" else f"nullif({a}, '')" for a in items]
        value = cleaned[0] if len(cleaned) == 1 else f"coalesce({', '.join(cleaned)})"
        raws.append(f"{value} AS {raw}")
        if f.kind == "text":
            doubts.append(_FAST_TEXT_DOUBT.format(t=raw))
    doubt = " OR ".join(f"({d})" for d in doubts) or "false"
    ctes = (
        "values AS (SELECT CAST(NULL AS UBIGINT) AS h, false AS blank, CAST(NULL AS VARCHAR) AS shape, "
        f"{', '.join(raws)} FROM ({rows})), "
        f"raw AS (SELECT *, {doubt} AS doubt FROM values)"
    )
    sql, _, _ = _validated_sql(fmt, ctes, fast=True)
    return sql


def _struct_spec(paths: list[tuple[str, ...]]) -> dict[str, str] | None:
    """read_json column types for the paths: VARCHAR leaves inside STRUCTs (None if a path is both
    a leaf and a prefix of another, which one read_json column cannot be)."""
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        for key in path[:-1]:
            child = node.setdefault(key, {})
            if child is None:
                return None
            node = child
        if path[-1] in node:
            return None
        node[path[-1]] = None

    def render(node: dict[str, Any] | None) -> str:
        if node is None:
            return "VARCHAR"
        return "STRUCT(" + ", ".join(f"{_ident(key)} {render(child)}" for key, child in node.items()) + ")"

    return {key: render(child) for key, child in tree.items()}


def _struct_access(path: tuple[str, ...]) -> str:
    expr = _ident(path[0])
    for key in path[1:]:
        expr = f"struct_extract({expr}, {_quote(key)})"
    return expr


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


# Reader-level columns every staged row carries: its place in the line (si: 1 unless the line
# holds several records, as an OTLP export does), how a bad record names itself (span), and its
# parent (OTLP spans), for the aggregate test.
_LINE_RECORD = "1 AS si, CAST(NULL AS VARCHAR) AS span, CAST(NULL AS VARCHAR) AS parent"


def staging_sql(fmt: Format, reader: _Reader, *, validate_json: bool = True) -> tuple[str, list[str], list[str]]:
    """The query staging one file, the reasons its `problem` column indexes and those its `skip`
    column indexes (both 1-based).

    Output columns: blank, problem, got (the offending value), h (the line's content hash), si,
    span, parent, skip, usage, the staging columns, key_hint (the redacted hint of a key-like id).
    `validate_json=False` skips json_valid() on lines starting with "{" (a tenth of the work):
    the query then fails on a malformed one, and the caller runs it again validating.
    """
    if fmt.reader == "csv":
        lines = f"SELECT *, {reader.row_hash} AS h, false AS blank, CAST(NULL AS VARCHAR) AS shape FROM ({reader.rows})"
        raws = ", ".join(part for f in fmt.fields for part in _raw_csv(f, reader))
        raw = f"SELECT h, blank, shape, {_LINE_RECORD}, {raws} FROM lines"
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
    lines = (
        f"lines AS (SELECT text, {blank} AS blank FROM ({reader.rows})), "
        f"parsed AS (SELECT text, blank, {shape} AS shape FROM lines)"
    )
    if fmt.reader == "otlp":
        return _validated_sql(fmt, f"{lines}, {_otlp_ctes(fmt)}", reader_skips=[("no_span", NO_SPANS)])
    paths = _all_paths(fmt.fields)
    listed = "[" + ", ".join(_quote(_json_path(p)) for p in paths) + "]"
    ctes = (
        f"{lines}, "
        # One parse per line: every path at once, as text (json_extract_string is about twice as
        # fast as json_transform into a struct).
        "fields AS (SELECT text, blank, shape, CASE WHEN NOT blank THEN hash(text) END AS h, "
        f"CASE WHEN shape IS NULL AND NOT blank THEN json_extract_string(text, {listed}) END AS v FROM parsed), "
        f"raw AS (SELECT h, blank, shape, {_LINE_RECORD}, "
        f"{', '.join(_raw_json(f, paths) for f in fmt.fields)} FROM fields)"
    )
    return _validated_sql(fmt, ctes)


# ------------------------------------------------------------------------------------------- OTLP
# What json_transform keeps of an OTLP/JSON export line. An attribute's value is whichever scalar
# is set, as text (intValue is a JSON string in OTLP/JSON; a number is read alike); array and
# kvlist values are not read. Types that do not match become NULL (json_transform is lenient).
_OTLP_VALUE = {"stringValue": "VARCHAR", "intValue": "VARCHAR", "doubleValue": "VARCHAR", "boolValue": "VARCHAR"}
_OTLP_ATTRIBUTES = [{"key": "VARCHAR", "value": _OTLP_VALUE}]
_OTLP_SPAN = {
    "traceId": "VARCHAR",
    "spanId": "VARCHAR",
    "parentSpanId": "VARCHAR",
    "name": "VARCHAR",
    "startTimeUnixNano": "VARCHAR",
    "endTimeUnixNano": "VARCHAR",
    "attributes": _OTLP_ATTRIBUTES,
    "status": {"code": "VARCHAR", "message": "VARCHAR"},
}
_OTLP_EXPORT = {
    "resourceSpans": [{"resource": {"attributes": _OTLP_ATTRIBUTES}, "scopeSpans": [{"spans": [_OTLP_SPAN]}]}]
}
NO_SPANS = "an export request without spans"
AGGREGATE = (
    "an aggregate: its usage sums that of spans below it (an agent run, or a framework's span around "
    "the SDK's own), which are counted instead"
)


def _lambda(param: str, body: str) -> str:
    """A list lambda in the syntax of the installed DuckDB (1.3 added `lambda x: ...`; 2.0 requires it)."""
    import duckdb

    major, minor = (int(part) for part in duckdb.__version__.split(".")[:2])
    return f"lambda {param}: {body}" if (major, minor) >= (1, 3) else f"{param} -> {body}"


def _otlp_ctes(fmt: Format) -> str:
    """One row per span of each export line (a line without spans, or a bad one, gives one row)."""
    scalar = "coalesce({a}.value.stringValue, {a}.value.intValue, {a}.value.doubleValue, {a}.value.boolValue)"
    flat = (
        "flatten(list_transform(doc.resourceSpans, "
        + _lambda(
            "rs",
            "flatten(list_transform(rs.scopeSpans, "
            + _lambda("ss", "list_transform(ss.spans, " + _lambda("sp", "{'r': rs.resource.attributes, 's': sp}") + ")")
            + "))",
        )
        + "))"
    )
    # Lines that are JSON objects but no trace export: tell logs and metrics exports apart.
    other = (
        "CASE WHEN json_exists(text, '$.resourceLogs') THEN 'logs' WHEN json_exists(text, '$.resourceMetrics') "
        "THEN 'metrics' WHEN json_exists(text, '$.resourceProfiles') THEN 'profiles' ELSE 'traces' END"
    )
    described = (
        "'span ' || si || ' of ' || n || ' (' || coalesce(x.s.spanId, 'no spanId') "
        "|| coalesce(' \"' || x.s.name || '\"', '') || ')'"
    )
    raws = ", ".join(_raw_otlp(f) for f in fmt.fields)
    return (
        "docs AS (SELECT text, blank, shape, CASE WHEN NOT blank THEN hash(text) END AS h, "
        f"CASE WHEN shape IS NULL AND NOT blank THEN json_transform(text, {_quote(_OTLP_EXPORT)}) END AS doc "
        "FROM parsed), "
        "lined AS (SELECT h, blank, "
        f"CASE WHEN shape IS NOT NULL OR blank THEN shape WHEN doc.resourceSpans IS NULL THEN {other} END AS shape, "
        f"CASE WHEN doc.resourceSpans IS NOT NULL THEN {flat} END AS spans FROM docs), "
        "records AS (SELECT h, blank, shape, len(spans) AS n, unnest(padded) AS x, "
        "generate_subscripts(padded, 1) AS si "
        "FROM (SELECT *, CASE WHEN len(spans) > 0 THEN spans ELSE [NULL] END AS padded FROM lined)), "
        "spans AS (SELECT h, blank, si, n, x, "
        "CASE WHEN shape IS NULL AND x IS NOT NULL AND x.s IS NULL THEN 'span' ELSE shape END AS shape, "
        f"list_transform(x.s.attributes, {_lambda('a', 'a.key')}) AS sk, "
        f"list_transform(x.s.attributes, {_lambda('a', scalar.format(a='a'))}) AS sv, "
        f"list_transform(x.r, {_lambda('a', 'a.key')}) AS rk, "
        f"list_transform(x.r, {_lambda('a', scalar.format(a='a'))}) AS rv "
        "FROM records), "
        f"raw AS (SELECT h, blank, shape, si, CASE WHEN x IS NOT NULL THEN {described} END AS span, "
        f"nullif(x.s.parentSpanId, '') AS parent, x IS NULL AS no_span, {raws} FROM spans)"
    )


def _otlp_value(path: tuple[str, ...]) -> str:
    """SQL for one OTLP path: ("span", field[, subfield]), ("attributes", key) or ("resource", key)."""
    root, *rest = path
    if root == "span" and rest:
        node: Any = _OTLP_SPAN
        expr = "x.s"
        for key in rest:
            if not isinstance(node, dict) or key not in node:
                raise ValueError(f"OTLP span path {path!r}: the importer does not read {key!r}")
            node = node[key]
            expr += f".{_ident(key)}"
        return expr
    if root in ("attributes", "resource") and len(rest) == 1:
        keys, values = ("sk", "sv") if root == "attributes" else ("rk", "rv")
        return f"{values}[list_position({keys}, {_quote(rest[0])})]"
    raise ValueError(f"OTLP path {path!r}: expected ('span', field), ('attributes', key) or ('resource', key)")


def _raw_otlp(f: Field) -> str:
    if f.kind == "money":
        raise ValueError("OTLP formats read no money field (no convention carries a cost)")
    items = [_otlp_value(p) for p in f.paths]
    cleaned = [f"nullif(trim({a}), '')" if f.name == "model" else f"nullif({a}, '')" for a in items]
    value = cleaned[0] if len(cleaned) == 1 else f"coalesce({', '.join(cleaned)})"
    return f"{value} AS {_ident(f.name + '__raw')}"


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
    if f.kind == "nanos":
        # Unix nanoseconds as digits (OTLP/JSON writes them as strings): kept as BIGINT nanoseconds.
        value = f"CASE WHEN {cv} > 0 AND CAST({cv} AS VARCHAR) = {raw} THEN {cv} END"
        return f"TRY_CAST({raw} AS BIGINT)", value, missing_or_typed
    raise ValueError(f"unknown field kind {f.kind!r}")


_KIND_RULE = {
    "count": "must be a whole number from 0 to 1e15",
    "flag": "must be true or false",
    "number": "must be a number ≥ 0",
    "money": "must be a number of US dollars ≥ 0",
    "time": "must be an RFC 3339 date-time such as 2026-11-27T09:30:00Z",
    "epoch": "must be Unix seconds",
    "nanos": "must be Unix nanoseconds (a whole number > 0)",
}


def _secret(column: str) -> str:
    return (
        f"(starts_with({column}, 'sk-ant-') OR (starts_with({column}, 'sk-') AND length({column}) > 20) "
        f"OR (starts_with({column}, 'AIza') AND length({column}) >= 30) "
        f"OR ((starts_with({column}, 'xai-') OR starts_with({column}, 'gsk_')) AND length({column}) > 20))"
    )


def _hint(column: str) -> str:
    return f"regexp_extract({column}, '{_SECRET_PREFIXES}') || '…' || right({column}, 4)"


# Problems of a whole line (or of a spans entry), before any field is looked at.
_SHAPES = {
    "json": "not valid JSON",
    "object": "not a JSON object",
    "traces": "not an OTLP trace export: no resourceSpans list",
    "logs": "an OTLP logs export (resourceLogs), not traces",
    "metrics": "an OTLP metrics export (resourceMetrics), not traces",
    "profiles": "an OTLP profiles export (resourceProfiles), not traces",
    "span": "a spans entry that is not a span object",
}


def _validated_sql(
    fmt: Format,
    ctes: str,
    *,
    reader_skips: list[tuple[str, str]] | None = None,
    fast: bool = False,
) -> tuple[str, list[str], list[str]]:
    """Typed columns and the first problem (or skip reason) of every record, on top of the `raw`
    CTE of field values. Returns the query, the problem reasons and the skip reasons.

    Order: a bad line (shape) first; then whether the record is a request at all (skips); then
    each field's kind, the format's failures, required columns and checks. With `fast`, the
    query outputs only the staging columns and key_hint, and the first problem or doubtful value
    (the raw CTE's `doubt`) aborts it.
    """
    conversions: list[str] = []
    typed: list[str] = []
    flags: list[str] = []
    shapes: list[tuple[str, str, str]] = [(f"shape = '{k}'", reason, "NULL") for k, reason in _SHAPES.items()]
    checks: list[tuple[str, str, str]] = []  # (condition, reason, offending value)
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
    skips = [*(reader_skips or []), *((f"({c.condition})", c.reason) for c in fmt.skips)]

    field_names = {f.name for f in fmt.fields}
    missing_cols = [c for c in STAGING_OUT if c not in fmt.columns]
    if missing_cols:
        raise ValueError(f"format {fmt.name} maps no expression to {', '.join(missing_cols)}")
    replaced = [f"{expr} AS {_ident(col)}" for col, expr in fmt.columns.items() if col in field_names]
    added = [f"{expr} AS {_ident(col)}" for col, expr in fmt.columns.items() if col not in field_names]
    replace_sql = f" REPLACE ({', '.join(replaced)})" if replaced else ""

    numbered = list(enumerate([*shapes, *checks], start=1))
    line_whens = " ".join(f"WHEN {cond} THEN {i}" for i, (cond, _, _) in numbered[: len(shapes)])
    field_whens = " ".join(f"WHEN {cond} THEN {i}" for i, (cond, _, _) in numbered[len(shapes) :])
    got = " ".join(f"WHEN {i} THEN {shown}" for i, (_, _, shown) in numbered if shown != "NULL")
    skip = (
        "CASE WHEN blank OR shape IS NOT NULL THEN NULL "
        + " ".join(f"WHEN {cond} THEN {i}" for i, (cond, _) in enumerate(skips, start=1))
        + " END"
        if skips
        else "NULL"
    )
    outputs = [
        f"CASE WHEN {_secret(c)} THEN 'key_' || left(sha256({c}), {SECRET_ID_HEX}) ELSE {c} END AS {c}"
        if c == "api_key_id"
        else f"CASE WHEN {_secret(c)} THEN {_hint(c)} ELSE {c} END AS {c}"
        if c == "key_name"
        else _ident(c)
        for c in STAGING_OUT
    ]
    key_hint = f"CASE WHEN {_secret('api_key_id')} THEN {_hint('api_key_id')} END AS key_hint"
    body = (
        f"WITH {ctes}, "
        f"converted AS (SELECT *{', ' if conversions else ''}{', '.join(conversions)} FROM raw), "
        f"typed AS (SELECT *, {', '.join(typed)} FROM converted), "
        f"flagged AS (SELECT *{', ' if flags else ''}{', '.join(flags)} FROM typed), "
        f"cols AS (SELECT *{replace_sql}{', ' if added else ''}{', '.join(added)} FROM flagged), "
        f"sorted AS (SELECT *, CAST({skip} AS SMALLINT) AS skip FROM cols), "
        "judged AS (SELECT *, CASE WHEN blank THEN NULL "
        f"{line_whens} WHEN skip IS NOT NULL THEN NULL {field_whens} END AS problem FROM sorted) "
    )
    if fast:
        abort = "error('costhawk: not clean, the line path decides')"
        sql = (
            f"{body}SELECT {', '.join(outputs)}, {key_hint} FROM judged "
            f"WHERE CASE WHEN problem IS NOT NULL OR doubt THEN {abort} ELSE true END"
        )
    else:
        usage = f"coalesce(({fmt.usage}), false)" if fmt.usage else "false"
        sql = (
            f"{body}SELECT blank, CAST(problem AS SMALLINT) AS problem, "
            f"CASE WHEN problem IS NOT NULL THEN CAST(CASE problem {got} END AS VARCHAR) END AS got, h, "
            f"CAST(si AS INTEGER) AS si, span, parent, skip, {usage} AS usage, "
            f"{', '.join(outputs)}, {key_hint} FROM judged"
        )
    return sql, [reason for _, (_, reason, _) in numbered], [reason for _, reason in skips]


def _check(c: Check) -> tuple[str, str, str]:
    return (f"({c.condition})", c.reason, f"CAST({c.got} AS VARCHAR)" if c.got else "NULL")


def _good(table: str = "") -> str:
    """SQL: a staged row to merge, neither blank, bad nor skipped (`table`: an alias with its dot)."""
    return f"{table}problem IS NULL AND NOT {table}blank AND {table}skip IS NULL"


_GOOD = _good()


def _mark_aggregates(conn: Connection, skip: int) -> None:
    """Skip records with usage that are ancestors of other records with usage in the same trace.

    Walks up from every record with usage through the parent links of all staged spans (those
    without usage too, e.g. an agent step between a run and its calls).
    """
    conn.execute(
        """
        CREATE TEMP TABLE aggregates AS
        WITH RECURSIVE links AS (
            SELECT query_id AS t, request_id AS id, parent FROM staged
            WHERE span IS NOT NULL AND query_id IS NOT NULL AND request_id IS NOT NULL AND parent IS NOT NULL
        ),
        up(t, id, anc) AS (
            SELECT t, id, parent FROM links WHERE (t, id) IN (SELECT query_id, request_id FROM staged WHERE usage)
            UNION
            SELECT up.t, up.id, l.parent FROM up JOIN links AS l ON l.t = up.t AND l.id = up.anc
        )
        SELECT DISTINCT t, anc FROM up WHERE anc <> id
        """
    )
    conn.execute(
        "UPDATE staged SET skip = ?, problem = NULL, got = NULL FROM aggregates AS a "
        "WHERE staged.usage AND staged.query_id = a.t AND staged.request_id = a.anc",
        [skip],
    )
    conn.execute("DROP TABLE aggregates")


def _count(conn: Connection) -> _Staged:
    staged = _Staged()
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE si = 1), count(span), count(*) FILTER (WHERE blank), count(problem), "
        "count(*) FILTER (WHERE problem IS NOT NULL AND span IS NOT NULL), "
        f"count(*) FILTER (WHERE key_hint IS NOT NULL AND {_GOOD}), count(*) FILTER (WHERE {_GOOD}) FROM staged"
    ).fetchone()
    staged.accepted, staged.spans, staged.blank, bad, staged.bad_spans, staged.keys, staged.good = (int(v) for v in row)
    staged.refused = int(conn.execute("SELECT count(DISTINCT line) FROM reader_rejects").fetchone()[0])
    staged.rejected = bad + staged.refused
    conn.execute(
        f"CREATE TABLE dup_ids AS SELECT request_id FROM staged WHERE {_GOOD} GROUP BY request_id HAVING count(*) > 1"
    )
    staged.dup_ids = int(conn.execute("SELECT count(*) FROM dup_ids").fetchone()[0])
    return staged


def _number(conn: Connection, numbering: _Reader, params: dict[str, object]) -> None:
    """Number the lines that need it (bad ones, repeated request ids) and set aside the repeats.

    `numbered` maps a content hash to the line numbers (k: the reader's row number) holding it.
    First line wins (within a line, the first record): of the good rows sharing a request id,
    every one but the earliest is a repeat.
    """
    conn.execute(
        "CREATE TABLE wanted AS SELECT DISTINCT h FROM staged "
        f"WHERE problem IS NOT NULL OR ({_GOOD} AND request_id IN (SELECT request_id FROM dup_ids))"
    )
    conn.execute(
        f"CREATE TABLE numbered AS SELECT k, h FROM (SELECT row_number() OVER () AS k, {numbering.row_hash} AS h "
        f"FROM ({numbering.rows})) WHERE h IN (SELECT h FROM wanted)",
        params,
    )
    conn.execute(
        f"""
        CREATE TABLE repeats AS
        WITH firsts AS (SELECT h, min(k) AS k FROM numbered GROUP BY h),
        candidates AS (
            SELECT s.rowid AS rid, s.request_id, f.k, s.si
            FROM staged AS s JOIN firsts AS f USING (h)
            WHERE {_good("s.")}
              AND s.request_id IN (SELECT request_id FROM dup_ids)
        )
        SELECT rid FROM candidates QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY k, si, rid) > 1
        """
    )


def _report_bad_lines(conn: Connection, staged: _Staged, reasons: list[str], header: int, limit: int) -> None:
    """The first bad lines (and spans) with their true line numbers, and rejections counted per reason."""
    rejects = [
        (int(r[0]), _READER_REASONS.get(str(r[1]), str(r[1]).lower()))
        for r in conn.execute("SELECT line, min(error_type) FROM reader_rejects GROUP BY line ORDER BY line").fetchall()
    ]
    reject_lines = [line for line, _ in rejects]

    def true_line(k: int) -> int:
        # The k-th row the reader produced sits after every refused line r_i with r_i - i < k + header.
        return header + k + sum(1 for i, r in enumerate(reject_lines, start=1) if r - header - i < k)

    bad: list[tuple[int, int, str]] = [(line, 0, reason) for line, reason in rejects[:limit]]
    if staged.rejected > staged.refused:
        rows = conn.execute(
            "SELECT DISTINCT n.k, s.si, s.problem, s.got, s.span FROM staged AS s JOIN numbered AS n USING (h) "
            "WHERE s.problem IS NOT NULL ORDER BY n.k, s.si LIMIT ?",
            [limit],
        ).fetchall()
        bad += [
            (
                true_line(int(k)),
                int(si),
                (f"{span}: " if span is not None else "")
                + reasons[int(p) - 1]
                + (f", got {_clip(str(got))}" if got is not None else ""),
            )
            for k, si, p, got, span in rows
        ]
    staged.bad_lines = [BadLine(line, reason) for line, _, reason in sorted(bad)[:limit]]
    by_reason = _tally(conn, "problem", reasons)
    for _, reason in rejects:
        by_reason[reason] = by_reason.get(reason, 0) + 1
    staged.by_reason = dict(sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0])))
    staged.repeats = int(conn.execute("SELECT count(*) FROM repeats").fetchone()[0])


def _tally(conn: Connection, column: str, reasons: list[str]) -> dict[str, int]:
    """Staged rows per reason of an index column (problem or skip), most frequent first."""
    counts = conn.execute(f"SELECT {column}, count(*) FROM staged WHERE {column} IS NOT NULL GROUP BY 1").fetchall()
    tally = {reasons[int(i) - 1]: int(n) for i, n in counts}
    return dict(sorted(tally.items(), key=lambda kv: (-kv[1], kv[0])))


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
        # A fast-path stage holds only good rows; a line-path stage marks bad, blank, skipped and repeated ones.
        where = (
            ""
            if staged.fast
            else f"WHERE {_GOOD} AND NOT EXISTS (SELECT 1 FROM costhawk_stage.repeats AS r WHERE r.rid = s.rowid)"
        )
        conn.execute(f"CREATE TEMP VIEW costhawk_staged AS SELECT {columns} FROM costhawk_stage.staged AS s {where}")
        import_id = store.start_import(conn, source=str(source.resolve()), fmt=fmt.name, sha256=None)
        with _watch(conn, f"merging {staged.good - staged.repeats:,} requests", progress):
            merged = store.merge_staged_requests(conn, "costhawk_staged", import_id, unique=True)
        result = replace(merged, duplicates=merged.duplicates + staged.repeats)
        if staged.keys:
            _record_key_hints(conn, import_id, "" if staged.fast else f"AND {_GOOD}")
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


def _record_key_hints(conn: Connection, import_id: int, good: str) -> None:
    """Key material never reaches `requests`; its hashed id, name and redacted hint go to `api_keys`."""
    conn.execute(
        f"""
        INSERT INTO api_keys (provider, api_key_id, name, redacted_hint, updated_at)
        SELECT r.provider, r.api_key_id, any_value(r.key_name), any_value(h.key_hint), ?
        FROM requests AS r
        JOIN (SELECT DISTINCT api_key_id, key_hint FROM costhawk_stage.staged
              WHERE key_hint IS NOT NULL {good}) AS h USING (api_key_id)
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
