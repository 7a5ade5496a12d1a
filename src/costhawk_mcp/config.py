"""Settings: one place, one precedence (explicit argument, then environment, then default).

Reading the environment happens in `Settings.from_env()`, never at import time, so tests can point
`COSTHAWK_HOME` at a temporary folder. Secrets (admin keys, the HTTP token) are read here and kept
out of every repr.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from costhawk_mcp.errors import InvalidArgument

DEFAULT_MAX_INPUT_BYTES = 20 * 1024 * 1024
DEFAULT_LOCK_TIMEOUT_S = 30.0

# Every environment variable the project reads, with its meaning; the README's table is checked
# against this list by a test.
ENV_VARS: dict[str, str] = {
    "COSTHAWK_HOME": "Folder for the database, the user price catalog and the demo data (default ~/.costhawk).",
    "COSTHAWK_DB": "Path of the DuckDB file (default $COSTHAWK_HOME/costhawk.duckdb); `:memory:` for tests.",
    "COSTHAWK_HTTP_TOKEN": "When set, HTTP transports require `Authorization: Bearer <token>`.",
    "COSTHAWK_MAX_INPUT_BYTES": "Largest text or message list estimate_prompt accepts (default 20 MB).",
    "COSTHAWK_LOCK_TIMEOUT": "Seconds to wait for another process's database lock (default 30).",
    "COSTHAWK_LOG_LEVEL": "Log level on stderr (default WARNING).",
    "OPENAI_ADMIN_KEY": "OpenAI Admin API key used by sync (never logged or stored).",
    "ANTHROPIC_ADMIN_KEY": "Anthropic Admin API key used by sync (never logged or stored).",
    "COSTHAWK_OPENAI_BASE_URL": "OpenAI API base URL (default https://api.openai.com/v1).",
    "COSTHAWK_ANTHROPIC_BASE_URL": "Anthropic API base URL (default https://api.anthropic.com).",
    "ANTHROPIC_API_KEY": "A regular Anthropic key; only used when estimate_prompt is asked for exact_count on Claude.",
    "GEMINI_API_KEY": "A Gemini API key (GOOGLE_API_KEY also works); only used for exact_count on Gemini models.",
    "COSTHAWK_GEMINI_BASE_URL": "Gemini API base URL (default https://generativelanguage.googleapis.com).",
}


@dataclass(frozen=True)
class Settings:
    """Resolved configuration for one process."""

    home: Path
    db_path: str
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
    log_level: str = "WARNING"
    http_token: str | None = field(default=None, repr=False)
    openai_admin_key: str | None = field(default=None, repr=False)
    anthropic_admin_key: str | None = field(default=None, repr=False)
    openai_base_url: str = "https://api.openai.com/v1"
    anthropic_base_url: str = "https://api.anthropic.com"
    anthropic_api_key: str | None = field(default=None, repr=False)
    gemini_api_key: str | None = field(default=None, repr=False)
    gemini_base_url: str = "https://generativelanguage.googleapis.com"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, db: str | None = None) -> Settings:
        """Build settings from the environment; `db` (a --db flag) wins over COSTHAWK_DB."""
        env = os.environ if env is None else env
        home = Path(env.get("COSTHAWK_HOME") or Path.home() / ".costhawk").expanduser()
        db_path = db or env.get("COSTHAWK_DB") or str(home / "costhawk.duckdb")
        return cls(
            home=home,
            db_path=db_path if db_path == ":memory:" else str(Path(db_path).expanduser()),
            max_input_bytes=_positive_int(env, "COSTHAWK_MAX_INPUT_BYTES", DEFAULT_MAX_INPUT_BYTES),
            lock_timeout_s=_positive_float(env, "COSTHAWK_LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT_S),
            log_level=(env.get("COSTHAWK_LOG_LEVEL") or "WARNING").upper(),
            http_token=env.get("COSTHAWK_HTTP_TOKEN") or None,
            openai_admin_key=env.get("OPENAI_ADMIN_KEY") or None,
            anthropic_admin_key=env.get("ANTHROPIC_ADMIN_KEY") or None,
            openai_base_url=(env.get("COSTHAWK_OPENAI_BASE_URL") or cls.openai_base_url).rstrip("/"),
            anthropic_base_url=(env.get("COSTHAWK_ANTHROPIC_BASE_URL") or cls.anthropic_base_url).rstrip("/"),
            anthropic_api_key=env.get("ANTHROPIC_API_KEY") or None,
            gemini_api_key=env.get("GEMINI_API_KEY") or env.get("GOOGLE_API_KEY") or None,
            gemini_base_url=(env.get("COSTHAWK_GEMINI_BASE_URL") or cls.gemini_base_url).rstrip("/"),
        )

    def with_db(self, db_path: str) -> Settings:
        """A copy pointing at another database file."""
        return replace(self, db_path=db_path)

    @property
    def user_catalog_path(self) -> Path:
        """Where `costhawk-mcp pricing update` writes the user's own catalog."""
        return self.home / "pricing.json"

    @property
    def demo_db_path(self) -> str:
        """The demo's own database, beside the real one and never mixed with it."""
        if self.db_path == ":memory:":
            return str(self.home / "demo.duckdb")
        return str(Path(self.db_path).with_name("costhawk-demo.duckdb"))


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidArgument(name, f"expected a positive integer, got {raw!r}") from None
    if value <= 0:
        raise InvalidArgument(name, f"expected a positive integer, got {raw!r}")
    return value


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidArgument(name, f"expected a positive number of seconds, got {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise InvalidArgument(name, f"expected a positive number of seconds, got {raw!r}")
    return value
