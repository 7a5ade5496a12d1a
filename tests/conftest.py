"""Shared test set-up: every test runs in its own costhawk home, offline, with no provider keys."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from costhawk_mcp.config import Settings

DATA = Path(__file__).parent / "data"
TEST_CATALOG = DATA / "test_pricing.json"

_ENV_TO_CLEAR = (
    "COSTHAWK_DB",
    "COSTHAWK_HTTP_TOKEN",
    "COSTHAWK_MAX_INPUT_BYTES",
    "COSTHAWK_LOCK_TIMEOUT",
    "OPENAI_ADMIN_KEY",
    "ANTHROPIC_ADMIN_KEY",
    "COSTHAWK_OPENAI_BASE_URL",
    "COSTHAWK_ANTHROPIC_BASE_URL",
    "TIKTOKEN_CACHE_DIR",
    "DATA_GYM_CACHE_DIR",
)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh COSTHAWK_HOME per test; tiktoken pointed at an empty cache so nothing is downloaded."""
    home = tmp_path / "costhawk-home"
    home.mkdir()
    for name in _ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COSTHAWK_HOME", str(home))
    empty_cache = tmp_path / "empty-tiktoken-cache"
    empty_cache.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(empty_cache))
    yield home


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio."""
    return "asyncio"


@pytest.fixture
def test_catalog(isolated_env: Path) -> Path:
    """Install tests/data/test_pricing.json as the user catalog, so prices are small round numbers."""
    target = isolated_env / "pricing.json"
    shutil.copy(TEST_CATALOG, target)
    return target


@pytest.fixture
def settings(isolated_env: Path) -> Settings:
    """Settings for the isolated home, with the database as a file inside it."""
    return Settings.from_env()
