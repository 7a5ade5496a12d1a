"""A broken database is one clear line saying what is wrong and what to do, never a traceback.

Each broken file (garbage bytes, a DuckDB file cut in half, a directory where the file should be, a file
nobody may read, a database a newer costhawk-mcp migrated past our schema, a folder that cannot be
created) is met through every door: `costhawk-mcp import`, `costhawk-mcp sync`, a tool call to a real
`costhawk-mcp serve`, and an in-memory MCP tool call. Nothing is ever written to a broken file.

The good store holds N generated requests, each 800 × $2 + 200 × $0.5 + 100 × $8 per Mtok = $0.0025
(test-gpt after 2026-06-01), so N = 20,000 cost $50.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from mcp import stdio_client
from mcp.client import Client

from costhawk_mcp import __version__
from costhawk_mcp.cli import main
from costhawk_mcp.config import Settings
from costhawk_mcp.pricing.catalog import load_catalog
from costhawk_mcp.server.build import build_server
from costhawk_mcp.store.db import Database
from costhawk_mcp.store.importer import import_file
from costhawk_mcp.store.migrations import LATEST
from costhawk_mcp.store.store import Store
from import_support import canonical, generate_jsonl, write_lines
from sync_support import SINCE, UNTIL, hand_worked, running_fake
from transport_support import assert_no_traceback, stdio_params

pytestmark = pytest.mark.usefixtures("test_catalog")

TEST_CATALOG = Path(__file__).parent / "data" / "test_pricing.json"

N = 20_000


def _root_reads_anything() -> bool:
    """True as root (os.geteuid() == 0) unless the process was stripped of CAP_DAC_OVERRIDE: then a file
    without read permission is readable anyway and the unreadable case cannot be tested."""
    if os.name != "posix" or os.geteuid() != 0:
        return False
    with tempfile.TemporaryDirectory() as folder:
        probe = Path(folder) / "probe"
        probe.write_bytes(b"x")
        probe.chmod(0)
        return os.access(probe, os.R_OK)


ROOT = _root_reads_anything()
WINDOW = {"start": "2026-06-01", "end": "2026-08-01"}  # every generated request is on 2026-07-01


@pytest.fixture(scope="module")
def good_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A healthy store file with N requests, priced with the test catalog (built once, copied per case)."""
    folder = tmp_path_factory.mktemp("good")
    path = folder / "good.duckdb"
    store = Store(Database(str(path)), load_catalog(TEST_CATALOG))
    import_file(store, generate_jsonl(folder / "good.jsonl", N, prefix="g-"))
    assert not Path(f"{path}.wal").exists()  # checkpointed on close: one self-contained file
    return path


@dataclass(frozen=True)
class Broken:
    """One way a database can be unusable, and the message that must explain it."""

    name: str
    make: Callable[[Path, Path], None]  # (database path, a good database to copy from)
    expected: Callable[[Path], str]  # the message (or its start) for this path
    root_can_read: bool = True


def _garbage(path: Path, good: Path) -> None:
    path.write_bytes(random.Random(6).randbytes(64 * 1024))


def _truncated(path: Path, good: Path) -> None:
    data = good.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # opens, but the requests' blocks are gone


def _directory(path: Path, good: Path) -> None:
    path.mkdir()
    (path / "something.txt").write_text("not a database\n", encoding="utf-8")


def _unreadable(path: Path, good: Path) -> None:
    shutil.copy(good, path)  # _make takes every permission away once its state is recorded


def _newer(path: Path, good: Path) -> None:
    shutil.copy(good, path)
    conn = duckdb.connect(str(path))
    try:
        conn.execute("INSERT INTO schema_migrations VALUES (?, 'from a future costhawk', now())", [LATEST + 1])
        conn.execute("CREATE TABLE future_things (x INTEGER)")
    finally:
        conn.close()


def _damaged(what: str) -> Callable[[Path], str]:
    return lambda path: f"{path} is not a readable costhawk database: it is {what} ("


CASES = [
    Broken("garbage", _garbage, _damaged("not a DuckDB file at all")),
    Broken("truncated", _truncated, _damaged("damaged or truncated")),
    Broken(
        "directory",
        _directory,
        lambda path: (
            f"{path} is a directory, not a costhawk database file; point --db / COSTHAWK_DB at a file "
            "(it is created when missing), or move the directory away"
        ),
    ),
    Broken(
        "unreadable",
        _unreadable,
        lambda path: (
            f"cannot open {path}: permission denied; fix its permissions or point --db / COSTHAWK_DB at a "
            "writable location"
        ),
        root_can_read=False,
    ),
    Broken(
        "newer",
        _newer,
        lambda path: (
            f"{path} was written by a newer costhawk-mcp (schema version {LATEST + 1}; this costhawk-mcp "
            f"{__version__} knows versions up to {LATEST}); upgrade: pip install --upgrade costhawk-mcp "
            "(or point --db / COSTHAWK_DB at another file)"
        ),
    ),
]


def _params(cases: list[Broken]) -> list[Any]:
    return [
        pytest.param(
            case,
            id=case.name,
            marks=pytest.mark.skipif(
                ROOT and not case.root_can_read, reason="root reads any file: permissions cannot be tested as root"
            ),
        )
        for case in cases
    ]


def _state(path: Path) -> Any:
    """What is on disk at `path` (and its WAL), to prove costhawk wrote nothing to a broken database."""
    wal = Path(f"{path}.wal")
    if path.is_dir():
        return ("dir", sorted(p.name for p in path.iterdir()), wal.exists())
    if not os.access(path, os.R_OK):
        path.chmod(0o600)  # the unreadable case, after the fact: read it back to compare
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return ("file", digest, wal.exists())


@pytest.fixture
def broken_path(tmp_path: Path) -> Iterator[Path]:
    """Where each case puts its broken database; permissions restored afterwards so tmp can be removed."""
    path = tmp_path / "db" / "costhawk.duckdb"
    path.parent.mkdir()
    yield path
    if path.exists() and not path.is_dir():
        path.chmod(0o600)


def _make(case: Broken, path: Path, good: Path) -> Any:
    case.make(path, good)
    state = _state(path)
    if not case.root_can_read:
        path.chmod(0)
    return state


def _one_line(err: str, command: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith(f"costhawk-mcp {command}: ")
    return lines[0].removeprefix(f"costhawk-mcp {command}: ")


# ------------------------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("case", _params(CASES))
def test_import_names_the_problem_and_what_to_do_and_writes_nothing(
    case: Broken, broken_path: Path, good_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _make(case, broken_path, good_db)
    logs = write_lines(tmp_path / "x.jsonl", [canonical("x")])
    assert main(["import", str(logs), "--db", str(broken_path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert _one_line(err, "import").startswith(case.expected(broken_path))
    assert _state(broken_path) == before
    assert not list(broken_path.parent.glob(".costhawk-import-*"))  # its staging folder was removed


@pytest.mark.parametrize("case", _params(CASES))
def test_sync_names_the_problem_and_what_to_do_and_writes_nothing(
    case: Broken, broken_path: Path, good_db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _make(case, broken_path, good_db)
    with running_fake() as fake:
        hand_worked(fake)
        for name, value in fake.env().items():
            monkeypatch.setenv(name, value)
        code = main(["sync", "--since", SINCE, "--until", UNTIL, "--db", str(broken_path)])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert _one_line(err, "sync").startswith(case.expected(broken_path))
    assert _state(broken_path) == before


def test_a_database_folder_that_cannot_be_created_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the database's folder should be\n", encoding="utf-8")
    db = blocker / "costhawk.duckdb"
    logs = write_lines(tmp_path / "x.jsonl", [canonical("x")])
    assert main(["import", str(logs), "--db", str(db)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert _one_line(err, "import").startswith(f"cannot create the folder {blocker} for the database {db}: ")
    assert "point --db / COSTHAWK_DB at a writable location" in err


# ------------------------------------------------------------------------------------------- MCP
def _error_text(result: Any) -> str:
    assert result.is_error, result.structured_content
    text: str = result.content[0].text
    assert "Traceback" not in text and "internal error" not in text
    return text


@pytest.mark.anyio
@pytest.mark.parametrize("case", _params(CASES))
async def test_tool_calls_say_what_is_wrong_with_the_database(
    case: Broken, broken_path: Path, good_db: Path, settings: Settings
) -> None:
    before = _make(case, broken_path, good_db)
    async with Client(build_server(settings.with_db(str(broken_path)))) as client:
        reading = await client.call_tool("top_expensive_keys", WINDOW)
        assert case.expected(broken_path) in _error_text(reading)
        writing = await client.call_tool("set_budget", {"scope": "org", "amount_usd": 100})
        assert case.expected(broken_path) in _error_text(writing)
        # The server is still up: a tool that needs no database answers.
        price = await client.call_tool("lookup_pricing", {"model": "test-gpt"})
        assert not price.is_error
    assert _state(broken_path) == before


@pytest.mark.anyio
async def test_a_served_server_explains_each_broken_database_and_recovers_once_it_is_fixed(
    tmp_path: Path, good_db: Path, isolated_env: Path
) -> None:
    """One real `costhawk-mcp serve` (stdio); the file under it is broken in turn, then replaced by a good one.

    The server opens the file per call, so it needs no restart: once a good database is in place the same
    tool answers, N × $0.0025 = $50.
    """
    db = tmp_path / "served" / "costhawk.duckdb"
    db.parent.mkdir()
    params = stdio_params(isolated_env, tmp_path / "empty-tiktoken-cache", COSTHAWK_DB=str(db))
    stderr_path = tmp_path / "serve.stderr"
    with stderr_path.open("w", encoding="utf-8") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            for case in CASES:
                if ROOT and not case.root_can_read:
                    continue
                before = _make(case, db, good_db)
                result = await client.call_tool("top_expensive_keys", WINDOW)
                assert case.expected(db) in _error_text(result), case.name
                assert _state(db) == before, case.name
                if db.is_dir():
                    shutil.rmtree(db)
                else:
                    db.chmod(0o600)
                    db.unlink()
            shutil.copy(good_db, db)
            fixed = await client.call_tool("top_expensive_keys", WINDOW)
            assert not fixed.is_error, fixed.content
            assert fixed.structured_content is not None
            assert Decimal(str(fixed.structured_content["total_cost_usd"])) == Decimal("50")
            assert fixed.structured_content["total_requests"] == N
    assert_no_traceback(stderr_path.read_text(encoding="utf-8"))
