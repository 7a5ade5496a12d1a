"""Several processes on one database file: concurrent imports and readers, a held lock, kill -9, corruption.

Every line generate_jsonl writes costs 800 × $2 + 200 × $0.5 + 100 × $8 per Mtok = $0.0025 (test-gpt
after 2026-06-01), so N lines cost N × $0.0025.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from costhawk_mcp.cli import main
from costhawk_mcp.config import Settings
from costhawk_mcp.store.db import is_lock_error
from costhawk_mcp.store.importer import import_file
from import_support import canonical, cli_command, cli_env, generate_jsonl, open_store, read_file_db, write_lines

pytestmark = pytest.mark.usefixtures("test_catalog")
D = Decimal

# A reader process: queries through Store.reading() until told to stop, then prints what it saw.
READER = """
import json, sys, time
from pathlib import Path
from costhawk_mcp.config import Settings
from costhawk_mcp.pricing.catalog import load_catalog
from costhawk_mcp.store.db import Database
from costhawk_mcp.store.store import Store

settings = Settings.from_env()
store = Store(Database(settings.db_path, lock_timeout=60), load_catalog(settings.user_catalog_path))
stop = Path(sys.argv[1])
seen = []
while True:
    last = stop.exists()
    with store.reading() as conn:
        n, cost = conn.execute("SELECT count(*), coalesce(sum(cost_usd), 0) FROM requests").fetchone()
    seen.append([n, str(cost)])
    if last:
        break
    time.sleep(0.02)
print(json.dumps(seen))
"""


def _wait(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[str, str]:
    out, err = proc.communicate(timeout=timeout)
    return out, err


def test_two_imports_and_a_reader_in_separate_processes(tmp_path: Path, settings: Settings) -> None:
    n = 20_000
    a = generate_jsonl(tmp_path / "a.jsonl", n, prefix="a-")
    b = generate_jsonl(tmp_path / "b.jsonl", n, prefix="b-")
    stop = tmp_path / "stop"
    env = cli_env()
    procs: list[subprocess.Popen[str]] = []
    try:
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, str(stop)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(reader)
        imports = [
            subprocess.Popen(
                cli_command("import", str(path), "--json"),
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for path in (a, b)
        ]
        procs.extend(imports)
        results = [_wait(p) for p in imports]
        stop.touch()
        seen_out, seen_err = _wait(reader)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for proc, (out, err) in zip(imports, results, strict=True):
        assert proc.returncode == 0, err
        (entry,) = json.loads(out)["files"]
        assert (entry["inserted"], entry["duplicates"], entry["rejected"]) == (n, 0, 0)
    assert reader.returncode == 0, seen_err
    seen = [(count, D(cost)) for count, cost in json.loads(seen_out)]
    # The reader only ever saw whole files: nothing, one of them, or both; each costing n × $0.0025 = $50.
    assert set(seen) <= {(0, D(0)), (n, D(50)), (2 * n, D(100))}
    assert seen[-1] == (2 * n, D(100))
    store = open_store(settings)
    with store.reading() as conn:
        totals = conn.execute(
            "SELECT count(*), count(DISTINCT request_id), sum(input_tokens), sum(cost_usd) FROM requests"
        ).fetchone()
    assert totals == (2 * n, 2 * n, 2 * n * 1000, D("100"))


def test_a_lock_held_past_the_timeout_is_a_store_busy_message(tmp_path: Path, settings: Settings) -> None:
    import_file(open_store(settings), write_lines(tmp_path / "seed.jsonl", [canonical("seed")]))
    holder_code = (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1]); c.execute('BEGIN TRANSACTION'); "
        "print('ready', flush=True); sys.stdin.read()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", holder_code, settings.db_path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        path = write_lines(tmp_path / "more.jsonl", [canonical("more")])
        done = subprocess.run(
            cli_command("import", str(path)),
            env=cli_env(COSTHAWK_LOCK_TIMEOUT="0.3"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        holder.kill()
        holder.communicate()  # reaps it and closes the pipes
    assert done.returncode == 1
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"costhawk-mcp import: the database {settings.db_path} is busy")
    assert "COSTHAWK_LOCK_TIMEOUT" in line
    # Once the lock is free the same import goes through.
    assert main(["import", str(path)]) == 0


def _holds_write_lock(db_path: str) -> bool:
    try:
        conn = duckdb.connect(db_path, read_only=True)
    except duckdb.IOException as exc:
        return is_lock_error(exc)
    conn.close()
    return False


@pytest.mark.skipif(os.name != "posix", reason="kill -9 is POSIX")
def test_kill_9_during_the_merge_leaves_all_or_nothing_and_a_rerun_completes(
    tmp_path: Path, settings: Settings
) -> None:
    import_file(open_store(settings), write_lines(tmp_path / "seed.jsonl", [canonical("seed")]))  # schema in place
    n = 300_000
    big = generate_jsonl(tmp_path / "big.jsonl", n, prefix="big-")
    proc = subprocess.Popen(
        cli_command("import", str(big)), env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    killed_while_locked = False
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            # The only write lock this import takes is its merge transaction.
            if _holds_write_lock(settings.db_path):
                proc.send_signal(signal.SIGKILL)
                killed_while_locked = True
                break
            time.sleep(0.01)
    finally:
        if proc.poll() is None and not killed_while_locked:
            proc.kill()
        proc.communicate()
    assert killed_while_locked, "the import finished before its merge could be caught"
    assert proc.returncode == -signal.SIGKILL
    assert list(Path(settings.db_path).parent.glob(".costhawk-import-*"))  # its staging was left behind

    # Readable, with all of the file or none of it.
    (count,) = read_file_db(settings.db_path, "SELECT count(*) FROM requests")[0]
    assert count in (1, 1 + n)

    done = subprocess.run(
        cli_command("import", str(big), "--json"),
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (entry,) = json.loads(done.stdout)["files"]
    assert entry["inserted"] + entry["duplicates"] == n
    # seed: 1000 × $2 + 100 × $8 = $0.0028; the big file: 300,000 × $0.0025 = $750
    assert read_file_db(settings.db_path, "SELECT count(*), sum(cost_usd) FROM requests") == [(1 + n, D("750.0028"))]
    assert not list(Path(settings.db_path).parent.glob(".costhawk-import-*"))  # the stale staging was swept


def test_a_corrupt_database_file_is_one_clear_line_not_a_traceback(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    Path(settings.db_path).parent.mkdir(parents=True, exist_ok=True)
    Path(settings.db_path).write_bytes(b"this is not a duckdb database\n" * 500)
    path = write_lines(tmp_path / "x.jsonl", [canonical("x")])
    assert main(["import", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"costhawk-mcp import: {settings.db_path} is not a readable costhawk database")
    assert "Traceback" not in err
