"""`costhawk-mcp import`: load request logs (JSON Lines, CSV, raw OpenAI/Anthropic responses,
OpenTelemetry GenAI spans).

stdout gets one summary per file (or, with --json, one JSON document); a progress bar goes to
stderr when it is a terminal. Exit status: 0 when every file was read (bad lines are reported
and skipped), 1 when a file could not be read at all or the database could not be used.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
import time
from datetime import datetime, timezone
from decimal import Decimal
from typing import TextIO

from pydantic import BaseModel

from costhawk_mcp.config import Settings
from costhawk_mcp.errors import InvalidArgument
from costhawk_mcp.money import USD
from costhawk_mcp.store.import_formats import FORMATS

EPILOG = """\
The canonical format is JSON Lines, one request per line:
  {"request_id": "req_1", "timestamp": "2026-11-27T09:30:00Z", "provider": "openai",
   "model": "gpt-4o", "api_key_id": "key_1", "key_name": "prod", "project": "search",
   "user": "u_7", "query_id": "q_42", "feature": "answer", "input_tokens": 1200,
   "cached_input_tokens": 200, "cache_write_input_tokens": 0, "cache_write_1h_input_tokens": 0,
   "output_tokens": 300, "batch": false, "latency_ms": 812, "status": "ok", "cost_usd": 0.0049}
request_id, timestamp, model, input_tokens and output_tokens are required. input_tokens counts
every prompt token, cache reads and writes included; the cache fields are parts of it.
Token counts are whole numbers (JSON numbers or digit-only strings). A timestamp without an
offset is taken as UTC. cost_usd (optional) is what the source says the request cost; costhawk
prices every request itself from the catalog at the price of its day.

--format csv reads the same columns from a CSV file with a header row. --format openai and
anthropic read raw API responses (also OpenAI Batch output and Anthropic Message Batches results),
alone or under "response", "message" or "body" beside your own fields such as timestamp,
api_key_id, query_id. Anthropic responses carry no time: add "timestamp" or --default-timestamp.

--format otel reads OpenTelemetry GenAI spans from OTLP/JSON trace exports, one export request
per line (the Collector's file exporter). Each span with gen_ai.usage attributes is a request:
model from gen_ai.response.model (else gen_ai.request.model), tokens from gen_ai.usage.*
(input_tokens counts cache reads and writes, as the conventions say), the trace id as query_id
(an agent run is one query), the span id as request_id, start time and duration, span status,
the resource's service.name as feature. Other spans are skipped and counted by reason; a bad span
is reported with its line and its place in the line. The format's docstring lists every attribute.

Importing a file again changes nothing (request ids already stored are skipped; in a file the
first line wins). An api_key_id that looks like a key (sk-..., AIza...) is never stored: it is
replaced by a stable hashed id and a redacted hint such as sk-...abcd.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `import`."""
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("files", nargs="+", metavar="FILE", help="request-log files (.jsonl, .csv, optionally .gz)")
    parser.add_argument(
        "--format",
        default="auto",
        choices=["auto", *FORMATS],
        help="file format (default auto: from the suffix and the first line)",
    )
    parser.add_argument("--db", help="DuckDB file (default $COSTHAWK_DB or ~/.costhawk/costhawk.duckdb)")
    parser.add_argument(
        "--default-timestamp",
        type=_timestamp,
        metavar="TIME",
        help="time for lines that have none, e.g. 2026-11-27T09:30:00Z (no offset: UTC)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    parser.add_argument(
        "--show-errors", type=int, default=10, metavar="N", help="bad lines to list per file (default 10)"
    )


def _timestamp(text: str) -> datetime:
    raw = text.strip()
    try:
        parsed = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an RFC 3339 time such as 2026-11-27T09:30:00Z, got {text!r}"
        ) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed


class BadLineOut(BaseModel):
    """A rejected line in the JSON report."""

    line: int
    reason: str


class FileOut(BaseModel):
    """One file in the JSON report."""

    path: str
    format: str | None = None
    lines: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    blank: int = 0
    spans: int = 0
    bad_spans: int = 0
    skipped: int = 0
    bad_lines: list[BadLineOut] = []
    rejected_by_reason: dict[str, int] = {}
    skipped_by_reason: dict[str, int] = {}
    cost_usd: USD | None = None
    unpriced_requests: int = 0
    unpriced_models: list[str] = []
    import_id: int | None = None
    seconds: float = 0.0
    error: str | None = None


class ImportOut(BaseModel):
    """The JSON report: one entry per file, in the order given."""

    files: list[FileOut]
    ok: bool


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Import each file in turn; a file that cannot be read does not stop the others."""
    from costhawk_mcp.pricing.catalog import load_catalog
    from costhawk_mcp.store.db import Database
    from costhawk_mcp.store.importer import import_file
    from costhawk_mcp.store.store import Store

    if args.show_errors < 0:
        raise InvalidArgument("--show-errors", "expected a number ≥ 0")
    store = Store(
        Database(settings.db_path, lock_timeout=settings.lock_timeout_s), load_catalog(settings.user_catalog_path)
    )
    results: list[FileOut] = []
    for path in args.files:
        bar = _Bar(sys.stderr, path) if sys.stderr.isatty() else None
        try:
            report = import_file(
                store,
                path,
                fmt=args.format,
                default_timestamp=args.default_timestamp,
                max_bad_lines=args.show_errors,
                progress=bar,
            )
        except InvalidArgument as exc:
            results.append(FileOut(path=path, error=str(exc)))
            print(f"costhawk-mcp import: {exc}", file=sys.stderr)
            continue
        finally:
            if bar is not None:
                bar.clear()
        out = FileOut(
            path=report.path,
            format=report.format,
            lines=report.lines,
            inserted=report.inserted,
            duplicates=report.duplicates,
            rejected=report.rejected,
            blank=report.blank,
            spans=report.spans,
            bad_spans=report.bad_spans,
            skipped=report.skipped,
            bad_lines=[BadLineOut(line=b.line, reason=b.reason) for b in report.bad_lines],
            rejected_by_reason=report.rejected_by_reason,
            skipped_by_reason=report.skipped_by_reason,
            cost_usd=report.cost_usd,
            unpriced_requests=report.unpriced_requests,
            unpriced_models=report.unpriced_models,
            import_id=report.import_id,
            seconds=round(report.seconds, 3),
        )
        results.append(out)
        if not args.json:
            print(_describe(out), flush=True)
    ok = all(r.error is None for r in results)
    if args.json:
        print(ImportOut(files=results, ok=ok).model_dump_json(indent=2))
    return 0 if ok else 1


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _usd(value: Decimal) -> str:
    text = f"{value.quantize(Decimal('0.000001')):,f}".rstrip("0").rstrip(".")
    if "." in text and len(text.split(".")[1]) == 1:
        text += "0"
    return f"${text}"


def _describe(out: FileOut) -> str:
    spans = out.format == "otel"  # records are spans, several to a line
    parts = [f"{_plural(out.inserted, 'request')} inserted", f"{_plural(out.duplicates, 'duplicate')} skipped"]
    bad_lines = out.rejected - out.bad_spans
    if out.bad_spans:
        parts.append(f"{_plural(out.bad_spans, 'bad span')} rejected")
    if bad_lines:
        parts.append(f"{_plural(bad_lines, 'bad line')} rejected")
    if out.skipped:
        parts.append(f"{_plural(out.skipped, 'other span')} skipped")
    if out.blank:
        parts.append(f"{_plural(out.blank, 'blank line')} skipped")
    read = _plural(out.lines, "line") + (f", {_plural(out.spans, 'span')}" if spans else "")
    lines = [f"{out.path} ({out.format}): {read}: {', '.join(parts)} [{out.seconds:.1f} s]"]
    if out.inserted:
        priced = out.inserted - out.unpriced_requests
        cost = f"  cost of the new requests: {_usd(out.cost_usd or Decimal(0))} for {_plural(priced, 'priced request')}"
        if out.unpriced_requests:
            cost += (
                f"; {_plural(out.unpriced_requests, 'request')} not priced (model not in the catalog: "
                f"{', '.join(out.unpriced_models)})"
            )
        lines.append(cost)
    if out.skipped:
        tally = "; ".join(f"{count:,} × {reason}" for reason, count in out.skipped_by_reason.items())
        lines.append(f"  skipped: {tally}")
    lines.extend(f"  line {b.line}: {b.reason}" for b in out.bad_lines)
    if out.rejected > len(out.bad_lines):
        tally = "; ".join(f"{count:,} × {reason}" for reason, count in out.rejected_by_reason.items())
        lines.append(f"  … {out.rejected - len(out.bad_lines):,} more; all rejected lines by reason: {tally}")
    return "\n".join(lines)


class _Bar:
    """A one-line progress bar on stderr: file, stage, DuckDB's own progress of the running query."""

    def __init__(self, stream: TextIO, path: str) -> None:
        self.stream = stream
        self.name = path if len(path) <= 40 else "…" + path[-39:]
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._shown = False

    def __call__(self, stage: str, fraction: float | None) -> None:
        width = max(10, min(40, shutil.get_terminal_size((80, 20)).columns - len(self.name) - len(stage) - 24))
        if fraction is None:
            bar, pct = "·" * width, "   "
        else:
            done = int(max(0.0, min(1.0, fraction)) * width)
            bar, pct = "█" * done + "·" * (width - done), f"{int(fraction * 100):>3d}%"
        elapsed = time.monotonic() - self.started
        with self._lock:
            self.stream.write(f"\r\x1b[K{self.name}: {stage} {bar} {pct} {elapsed:5.1f} s")
            self.stream.flush()
            self._shown = True

    def clear(self) -> None:
        with self._lock:
            if self._shown:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
                self._shown = False
