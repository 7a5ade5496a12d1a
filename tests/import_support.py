"""Helpers for the request-log import tests: writing log files, running the CLI, reading the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb

from costhawk_mcp.config import Settings
from costhawk_mcp.pricing.catalog import load_catalog
from costhawk_mcp.store.db import Database
from costhawk_mcp.store.store import Store

SRC = Path(__file__).resolve().parents[1] / "src"


def canonical(request_id: str, **fields: Any) -> dict[str, Any]:
    """A canonical log line for test-gpt after the 2026-06-01 price change, overridable field by field."""
    line: dict[str, Any] = {
        "request_id": request_id,
        "timestamp": "2026-07-01T12:00:00Z",
        "provider": "openai",
        "model": "test-gpt",
        "input_tokens": 1000,
        "output_tokens": 100,
    }
    line.update(fields)
    return line


def write_lines(path: Path, lines: Iterable[Mapping[str, Any] | str], *, newline: str = "\n") -> Path:
    """Write one JSON object (or a raw string, written as is) per line."""
    text = newline.join(item if isinstance(item, str) else json.dumps(item) for item in lines)
    path.write_bytes((text + newline).encode("utf-8"))
    return path


def generate_jsonl(path: Path, count: int, *, prefix: str, start: int = 0) -> Path:
    """`count` canonical lines written by DuckDB itself (fast even for hundreds of thousands).

    Line i (from `start`): test-gpt on 2026-07-01, input 1000 of which 200 cached, output 100,
    so each costs 800 × $2 + 200 × $0.5 + 100 × $8 per Mtok = $0.0025.
    """
    conn = duckdb.connect()
    try:
        conn.execute(
            f"""
            COPY (
                SELECT ? || lpad(CAST(i AS VARCHAR), 9, '0') AS request_id,
                       '2026-07-01T12:00:00Z' AS timestamp, 'openai' AS provider, 'test-gpt' AS model,
                       'key_' || (i % 7) AS api_key_id, 'q_' || (i // 3) AS query_id,
                       1000 AS input_tokens, 200 AS cached_input_tokens, 100 AS output_tokens
                FROM range(?, ?) AS t(i)
            ) TO '{path}' (FORMAT json)
            """,
            [prefix, start, start + count],
        )
    finally:
        conn.close()
    return path


def open_store(settings: Settings) -> Store:
    """The store the CLI would use for these settings (the test catalog when installed)."""
    return Store(
        Database(settings.db_path, lock_timeout=settings.lock_timeout_s), load_catalog(settings.user_catalog_path)
    )


def store_at(settings: Settings, path: Path) -> Store:
    """A store in its own database file, priced like `open_store(settings)`."""
    return Store(Database(str(path), lock_timeout=settings.lock_timeout_s), load_catalog(settings.user_catalog_path))


def rows(store: Store, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
    """Run a read-only query against the store."""
    with store.reading() as conn:
        return [tuple(r) for r in conn.execute(sql, list(params)).fetchall()]


def read_file_db(path: str | Path, sql: str) -> list[tuple[Any, ...]]:
    """Query a database file directly, read-only (used after another process wrote it)."""
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return [tuple(r) for r in conn.execute(sql).fetchall()]
    finally:
        conn.close()


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a costhawk-mcp subprocess: this test's home, this source tree."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def cli_command(*args: str) -> list[str]:
    """`costhawk-mcp ARGS...` run with this interpreter."""
    return [sys.executable, "-m", "costhawk_mcp", *args]


def run_cli(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `costhawk-mcp ARGS...` to completion and capture its output."""
    return subprocess.run(
        cli_command(*args), env=cli_env(**env), capture_output=True, text=True, timeout=timeout, check=False
    )
