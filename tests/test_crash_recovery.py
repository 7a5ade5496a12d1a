"""kill -9 an import or a sync, run it again, and the store is exactly what one uninterrupted run leaves.

Each case kills a real `costhawk-mcp import` / `costhawk-mcp sync` child with SIGKILL, checks that the
file it leaves is readable and whole, re-runs the same command and compares every table with a store
built by an uninterrupted run: row counts, a fingerprint of every row (all columns but the times a run
happened at and the import ids), token and cost sums per key. The kills land

* at a seeded random moment of the run (three seeds each, delays spread over an uninterrupted run's
  duration, so they fall while staging, merging, fetching or writing);
* inside an open write transaction, after its statements ran and before COMMIT (a child with
  `Database.write` hooked sleeps there; for the sync, in its seeded n-th transaction: the schema's
  creation or a batch of pages);
* while the child waits for a write lock another process holds, so it has left a writer-intent file.

A killed import leaves its staging folder and a killed waiter its intent file; the re-run must not wait
for them and must remove them.

The import data: A = 20,000 requests already stored, then B = 100,000 more; every request costs
800 × $2 + 200 × $0.5 + 100 × $8 per Mtok = $0.0025 (test-gpt after 2026-06-01), so A + B = $300.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from costhawk_mcp.pricing.catalog import load_catalog
from costhawk_mcp.store.db import Database
from costhawk_mcp.store.importer import import_file
from costhawk_mcp.store.store import Store
from fake_providers import FakeProviders, generate
from import_support import SRC, generate_jsonl

pytestmark = pytest.mark.skipif(os.name != "posix", reason="kill -9 is POSIX")

TEST_CATALOG = Path(__file__).parent / "data" / "test_pricing.json"
N_A, N_B = 20_000, 100_000
SYNC_START, SYNC_END = datetime(2026, 11, 1), datetime(2026, 11, 11)
SYNC_ARGS = ["--since", "2026-11-01", "--until", "2026-11-11", "--bucket", "1h"]
WAIT_S = 90.0  # bound on every wait for a child (a shared, loaded machine); never a timing assertion

# Runs `costhawk-mcp ARGS` with one function patched: CRASH_HOOK = "module:qualname". On its CRASH_NTH call,
# wait_before touches CRASH_MARKER and waits for CRASH_MARKER.go before calling it; hang_in_block wraps a
# context manager (Database.write: one write transaction) and, once the caller's block has run, touches
# CRASH_MARKER and sleeps there, before COMMIT, until it is killed.
HOOKED_CHILD = r"""
import os, sys, time
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path

module_name, qualname = os.environ["CRASH_HOOK"].split(":")
mode, nth = os.environ["CRASH_MODE"], int(os.environ["CRASH_NTH"])
marker = Path(os.environ["CRASH_MARKER"])
go = Path(str(marker) + ".go")
owner = import_module(module_name)
*parents, name = qualname.split(".")
for part in parents:
    owner = getattr(owner, part)
original = getattr(owner, name)
calls = 0

def wait_before(*args, **kwargs):
    global calls
    calls += 1
    if calls == nth:
        marker.touch()
        while not go.exists():
            time.sleep(0.01)
    return original(*args, **kwargs)

@contextmanager
def hang_in_block(*args, **kwargs):
    global calls
    calls += 1
    mine = calls
    with original(*args, **kwargs) as value:
        yield value
        if mine == nth:
            marker.touch()
            time.sleep(600)

setattr(owner, name, wait_before if mode == "wait_before" else hang_in_block)
from costhawk_mcp.cli import main
sys.exit(main(sys.argv[1:]))
"""

# Holds a write lock on a database until its stdin closes.
LOCK_HOLDER = (
    "import duckdb, sys; c = duckdb.connect(sys.argv[1]); c.execute('BEGIN TRANSACTION'); "
    "print('ready', flush=True); sys.stdin.read(); c.close()"
)


@dataclass(frozen=True)
class Kill:
    """When to kill the child: `random` (a seeded delay), `in_transaction` or `waiting_for_lock`."""

    moment: str
    seed: int

    @property
    def id(self) -> str:
        return f"{self.moment}-seed{self.seed}"


KILLS = [
    Kill("random", 1),
    Kill("random", 2),
    Kill("random", 3),
    Kill("in_transaction", 4),
    Kill("waiting_for_lock", 5),
]


# ---------------------------------------------------------------------------------------- snapshots
# Columns that record when a run happened (or which run), not what it stored.
VOLATILE = {
    "requests": {"import_id"},
    "usage_buckets": {"synced_at"},
    "provider_costs": {"synced_at"},
    "api_keys": {"updated_at"},
    "projects": {"updated_at"},
    "sync_state": {"last_success_at", "last_attempt_at"},
    "schema_migrations": {"applied_at"},
    "budgets": {"created_at", "updated_at"},
}


def snapshot(path: Path) -> dict[str, Any]:
    """Every table's row count and row fingerprint, plus readable per-key sums of tokens and money.

    `imports` is compared by what it says was inserted: a re-run after a kill that landed past COMMIT
    adds an import that inserted nothing, which is right.
    """
    conn = duckdb.connect(str(path), read_only=True)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'main' AND table_type = 'BASE TABLE' ORDER BY table_name"
            ).fetchall()
        ]
        shot: dict[str, Any] = {}
        for table in tables:
            if table == "imports":
                shot[table] = conn.execute(
                    "SELECT sum(inserted), count(*) FILTER (WHERE finished_at IS NULL) FROM imports"
                ).fetchone()
                continue
            columns = [
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
                    [table],
                ).fetchall()
                if r[0] not in VOLATILE.get(table, set())
            ]
            row_hash = f"hash({', '.join(columns)})"
            shot[table] = conn.execute(f"SELECT count(*), sum({row_hash}) FROM {table}").fetchone()
        summaries = {
            "requests by key": (
                "requests",
                "SELECT api_key_id, count(*), count(DISTINCT request_id), sum(input_tokens), "
                "sum(cached_input_tokens), sum(output_tokens), sum(cost_usd) FROM requests GROUP BY ALL ORDER BY ALL",
            ),
            "buckets by key": (
                "usage_buckets",
                "SELECT provider, api_key_id, count(*), sum(input_tokens), sum(cached_input_tokens), "
                "sum(cache_write_tokens), sum(cache_write_1h_tokens), sum(output_tokens), sum(cost_usd) "
                "FROM usage_buckets GROUP BY ALL ORDER BY ALL",
            ),
            "provider costs": (
                "provider_costs",
                "SELECT provider, count(*), sum(amount_usd) FROM provider_costs GROUP BY ALL ORDER BY ALL",
            ),
            "sync state": (
                "sync_state",
                "SELECT provider, endpoint, covered_from, covered_to, last_error FROM sync_state ORDER BY ALL",
            ),
        }
        for name, (table, sql) in summaries.items():  # a store killed while it was created has no tables
            shot[name] = conn.execute(sql).fetchall() if table in tables else []
        return shot
    finally:
        conn.close()


def leftovers(db: Path) -> list[str]:
    """Staging folders and writer-intent files beside the database."""
    return sorted(
        p.name for p in db.parent.iterdir() if p.name.startswith(".costhawk-import-") or ".writer-waiting-" in p.name
    )


# ---------------------------------------------------------------------------------------- children
@dataclass
class Child:
    proc: subprocess.Popen[bytes]
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def alive_or_fail(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"the child exited with {self.proc.returncode} before the kill:\n{self.stderr()}")


@dataclass(frozen=True)
class Hook:
    mode: str  # wait_before | hang_in_block
    nth: int  # which call of Database.write: the n-th write transaction of the run
    target: str = "costhawk_mcp.store.db:Database.write"


def start(args: list[str], env: dict[str, str], workdir: Path, hook: Hook | None = None) -> Child:
    """`costhawk-mcp ARGS` as a child (hooked when asked), its output in files."""
    workdir.mkdir(parents=True, exist_ok=True)
    if hook is None:
        command = [sys.executable, "-m", "costhawk_mcp", *args]
    else:
        command = [sys.executable, "-c", HOOKED_CHILD, *args]
        env = {
            **env,
            "CRASH_HOOK": hook.target,
            "CRASH_MODE": hook.mode,
            "CRASH_NTH": str(hook.nth),
            "CRASH_MARKER": str(workdir / "marker"),
        }
    stderr_path = workdir / "child.stderr"
    with (workdir / "child.stdout").open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    return Child(proc, stderr_path)


def wait_for(condition: Any, child: Child, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        child.alive_or_fail()
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{child.stderr()}"
        time.sleep(0.01)


@contextmanager
def lock_held(db: Path) -> Iterator[None]:
    """Another process holds the database's write lock until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        yield
    finally:
        try:
            holder.communicate(input="", timeout=WAIT_S)  # closing its stdin releases the lock
        finally:
            if holder.poll() is None:
                holder.kill()
                holder.communicate()


def intents(db: Path) -> list[Path]:
    return list(db.parent.glob(f"{db.name}.writer-waiting-*"))


def kill_at(kill: Kill, child: Child, db: Path, workdir: Path, duration: float) -> None:
    """SIGKILL the child at the case's moment; returns once it is reaped."""
    rng = random.Random(kill.seed)
    marker = workdir / "marker"
    try:
        if kill.moment == "random":
            time.sleep(rng.uniform(0.2, 0.8) * duration)  # the seeded random point of the run
        elif kill.moment == "in_transaction":
            wait_for(marker.exists, child, "the hooked write transaction")
            time.sleep(rng.uniform(0.0, 0.2))
        else:
            wait_for(marker.exists, child, "the hooked child to reach its write")
            with lock_held(db):
                (workdir / "marker.go").touch()
                wait_for(lambda: bool(intents(db)), child, "the child's writer-intent file")
                time.sleep(rng.uniform(0.0, 0.2))
                child.proc.send_signal(signal.SIGKILL)
                child.proc.wait(timeout=WAIT_S)
            return
        child.proc.send_signal(signal.SIGKILL)
        child.proc.wait(timeout=WAIT_S)
    finally:
        if child.proc.poll() is None:
            child.proc.kill()
            child.proc.wait()


def rerun(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The same command again, uninterrupted. A short lock timeout: a dead writer's intent must not be waited for."""
    command = [sys.executable, "-m", "costhawk_mcp", *args]
    done = subprocess.run(
        command, env={**env, "COSTHAWK_LOCK_TIMEOUT": "10"}, capture_output=True, text=True, timeout=WAIT_S * 2
    )
    assert done.returncode == 0, done.stderr
    return done


# ----------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def crash_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A costhawk home with the test catalog, shared by the module's children."""
    home = tmp_path_factory.mktemp("crash-home")
    shutil.copy(TEST_CATALOG, home / "pricing.json")
    return home


def env_for(home: Path, **extra: str) -> dict[str, str]:
    """A child's environment: this source tree, `home`, nothing costhawk-related from outside."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("COSTHAWK_") and k not in ("OPENAI_ADMIN_KEY", "ANTHROPIC_ADMIN_KEY")
    }
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    env["COSTHAWK_HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass(frozen=True)
class ImportCase:
    logs: Path  # file B
    seeded: Path  # a store holding file A
    expected: dict[str, Any]
    duration: float  # of an uninterrupted `costhawk-mcp import B`, seconds


@pytest.fixture(scope="module")
def import_case(tmp_path_factory: pytest.TempPathFactory, crash_home: Path) -> ImportCase:
    folder = tmp_path_factory.mktemp("import-case")
    a = generate_jsonl(folder / "a.jsonl", N_A, prefix="a-")
    b = generate_jsonl(folder / "b.jsonl", N_B, prefix="b-")
    seeded = folder / "seeded" / "costhawk.duckdb"
    import_file(Store(Database(str(seeded)), load_catalog(TEST_CATALOG)), a)
    reference = folder / "reference" / "costhawk.duckdb"
    reference.parent.mkdir()
    shutil.copy(seeded, reference)
    started = time.monotonic()
    rerun(["import", str(b), "--db", str(reference)], env_for(crash_home))
    duration = time.monotonic() - started
    expected = snapshot(reference)
    # 7 keys (key_0 … key_6), 120,000 requests of 1000 input (200 cached) and 100 output tokens, $0.0025 each.
    by_key = expected["requests by key"]
    assert sum(r[1] for r in by_key) == sum(r[2] for r in by_key) == N_A + N_B
    assert sum(r[3] for r in by_key) == (N_A + N_B) * 1000
    assert sum(r[6] for r in by_key) == Decimal("300")
    return ImportCase(b, seeded, expected, duration)


@dataclass(frozen=True)
class SyncCase:
    fake: FakeProviders
    expected: dict[str, Any]
    duration: float


def fresh_run(fake: FakeProviders) -> None:
    """Every endpoint's first page comes at once, every later one after `slow_seconds`, counted anew per run."""
    with fake._lock:
        fake.pages_by_path.clear()
        fake.pages_served = 0
    fake.slow_after_pages = 1
    fake.slow_seconds = 0.4


def fast_run(fake: FakeProviders) -> None:
    """No slow pages: a re-run only has to be complete."""
    fake.slow_after_pages = None


@pytest.fixture(scope="module")
def sync_case(tmp_path_factory: pytest.TempPathFactory, crash_home: Path) -> Iterator[SyncCase]:
    fake = FakeProviders().start()
    try:
        generate(fake, SYNC_START, 10 * 24, combos=12)
        reference = tmp_path_factory.mktemp("sync-reference") / "costhawk.duckdb"
        fresh_run(fake)
        started = time.monotonic()
        rerun(["sync", *SYNC_ARGS, "--db", str(reference)], env_for(crash_home, **fake.env()))
        duration = time.monotonic() - started
        expected = snapshot(reference)
        # The reference itself against the fake's own figures (test catalog prices).
        totals = {p: (i, o, c) for p, _, _, i, _, _, _, o, c in _per_provider(expected["buckets by key"])}
        assert totals["openai"] == (
            sum(r.input_tokens for r in fake.openai),
            sum(r.output_tokens for r in fake.openai),
            fake.expected_cost("openai", SYNC_START, SYNC_END),
        )
        assert totals["anthropic"][:2] == (
            sum(r.uncached + r.cache_read + r.write_5m + r.write_1h for r in fake.anthropic),
            sum(r.output for r in fake.anthropic),
        )
        assert all(error is None for *_, error in expected["sync state"])
        yield SyncCase(fake, expected, duration)
    finally:
        fake.stop()


def _per_provider(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Sum the per-(provider, key) bucket rows of a snapshot per provider."""
    sums: dict[str, list[Any]] = {}
    for provider, _key, *values in rows:
        acc = sums.setdefault(provider, [0] * len(values))
        for i, v in enumerate(values):
            acc[i] += v or 0
    return [(p, None, *v) for p, v in sorted(sums.items())]


# -------------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("kill", KILLS, ids=[k.id for k in KILLS])
def test_an_import_killed_with_sigkill_then_rerun_ends_exactly_as_an_uninterrupted_import(
    kill: Kill, import_case: ImportCase, crash_home: Path, tmp_path: Path
) -> None:
    db = tmp_path / "store" / "costhawk.duckdb"
    db.parent.mkdir()
    shutil.copy(import_case.seeded, db)
    args = ["import", str(import_case.logs), "--db", str(db)]
    env = env_for(crash_home)
    # The import's only write transaction is its merge (the seeded store needs no migration).
    hook = {
        "random": None,
        "in_transaction": Hook("hang_in_block", 1),
        "waiting_for_lock": Hook("wait_before", 1),
    }[kill.moment]
    child = start(args, env, tmp_path / "killed", hook)
    kill_at(kill, child, db, tmp_path / "killed", import_case.duration)
    assert child.proc.returncode == -signal.SIGKILL or (kill.moment == "random" and child.proc.returncode == 0)

    # What the kill left: a readable file with all of B or none of it, and the dead child's debris.
    stored = sum(r[1] for r in snapshot(db)["requests by key"])
    assert stored in (N_A, N_A + N_B)
    if kill.moment != "random":
        assert stored == N_A  # it died before COMMIT
        assert any(name.startswith(".costhawk-import-") for name in leftovers(db))
    if kill.moment == "waiting_for_lock":
        assert intents(db)

    rerun(args, env)
    assert snapshot(db) == import_case.expected
    assert leftovers(db) == []


@pytest.mark.parametrize("kill", KILLS, ids=[k.id for k in KILLS])
def test_a_sync_killed_with_sigkill_then_rerun_ends_exactly_as_an_uninterrupted_sync(
    kill: Kill, sync_case: SyncCase, crash_home: Path, tmp_path: Path
) -> None:
    fake = sync_case.fake
    db = tmp_path / "store" / "costhawk.duckdb"
    args = ["sync", *SYNC_ARGS, "--db", str(db)]
    env = env_for(crash_home, **fake.env())
    # The sync's first write transaction creates the schema; the next ones store pages, several to a
    # transaction when they arrive together, so only the second is sure to exist. The seed picks one.
    nth = random.Random(kill.seed).choice([1, 2] if kill.moment == "in_transaction" else [2])
    hook = {
        "random": None,
        "in_transaction": Hook("hang_in_block", nth),
        "waiting_for_lock": Hook("wait_before", nth),
    }[kill.moment]
    fresh_run(fake)
    child = start(args, env, tmp_path / "killed", hook)
    kill_at(kill, child, db, tmp_path / "killed", sync_case.duration)
    assert child.proc.returncode == -signal.SIGKILL or (kill.moment == "random" and child.proc.returncode == 0)

    if db.exists():
        snapshot(db)  # readable whatever the moment
    if kill.moment == "waiting_for_lock":
        assert intents(db)

    fast_run(fake)
    rerun(args, env)
    assert snapshot(db) == sync_case.expected
    assert leftovers(db) == []
