"""The schema, as ordered and recorded migrations: the only place DDL lives.

Each migration runs once, inside the write transaction that first finds it missing, and is
recorded in `schema_migrations`. Never edit a migration that has shipped; add the next one.

Conventions: timestamps are `TIMESTAMP` in UTC (no time zone type, so no ICU dependence); token
counts are `BIGINT`; money is `DECIMAL(38, 15)` US dollars (exact); per-token rates are
`DECIMAL(38, 18)` US dollars per token. `input_tokens` always means *all* prompt tokens, cache
reads and writes included, whatever the source's own convention.
"""

from __future__ import annotations

from dataclasses import dataclass

from costhawk_mcp.errors import StoreError
from costhawk_mcp.store.db import Connection, utcnow


@dataclass(frozen=True)
class Migration:
    """One schema change."""

    version: int
    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "usage store: requests, provider buckets and costs, keys, projects, sync and import state",
        """
        CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);

        CREATE SEQUENCE import_ids START 1;
        CREATE TABLE imports (
            import_id BIGINT PRIMARY KEY,
            source VARCHAR NOT NULL,
            format VARCHAR NOT NULL,
            sha256 VARCHAR,
            started_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP,
            lines_read BIGINT NOT NULL DEFAULT 0,
            inserted BIGINT NOT NULL DEFAULT 0,
            duplicates BIGINT NOT NULL DEFAULT 0,
            rejected BIGINT NOT NULL DEFAULT 0
        );

        -- One row per API request, from imported request logs.
        CREATE TABLE requests (
            request_id VARCHAR NOT NULL,
            ts TIMESTAMP NOT NULL,
            provider VARCHAR NOT NULL,
            model VARCHAR NOT NULL,
            model_id VARCHAR,
            api_key_id VARCHAR,
            key_name VARCHAR,
            project VARCHAR,
            user_id VARCHAR,
            query_id VARCHAR,
            feature VARCHAR,
            input_tokens BIGINT NOT NULL,
            cached_input_tokens BIGINT NOT NULL,
            cache_write_tokens BIGINT NOT NULL,
            cache_write_1h_tokens BIGINT NOT NULL,
            output_tokens BIGINT NOT NULL,
            batch BOOLEAN NOT NULL,
            service_tier VARCHAR,
            tier VARCHAR NOT NULL,
            latency_ms DOUBLE,
            status VARCHAR,
            reported_cost_usd DECIMAL(38, 15),
            cost_usd DECIMAL(38, 15),
            import_id BIGINT NOT NULL
        );

        -- Provider usage buckets from the admin usage APIs, upserted on the full dimension tuple.
        CREATE TABLE usage_buckets (
            provider VARCHAR NOT NULL,
            endpoint VARCHAR NOT NULL,
            bucket_width VARCHAR NOT NULL,
            bucket_start TIMESTAMP NOT NULL,
            bucket_end TIMESTAMP NOT NULL,
            dims_key VARCHAR NOT NULL,
            project_id VARCHAR,
            workspace_id VARCHAR,
            api_key_id VARCHAR,
            user_id VARCHAR,
            model VARCHAR,
            model_id VARCHAR,
            batch BOOLEAN,
            service_tier VARCHAR,
            tier VARCHAR NOT NULL,
            context_window VARCHAR,
            long_context BOOLEAN NOT NULL DEFAULT false,
            requests BIGINT,
            input_tokens BIGINT NOT NULL,
            cached_input_tokens BIGINT NOT NULL,
            cache_write_tokens BIGINT NOT NULL,
            cache_write_1h_tokens BIGINT NOT NULL,
            output_tokens BIGINT NOT NULL,
            extra JSON,
            cost_usd DECIMAL(38, 15),
            synced_at TIMESTAMP NOT NULL,
            PRIMARY KEY (provider, endpoint, bucket_width, bucket_start, dims_key)
        );

        -- What the provider says it billed (OpenAI Costs API, Anthropic cost report).
        CREATE TABLE provider_costs (
            provider VARCHAR NOT NULL,
            bucket_start TIMESTAMP NOT NULL,
            bucket_end TIMESTAMP NOT NULL,
            dims_key VARCHAR NOT NULL,
            project_id VARCHAR,
            workspace_id VARCHAR,
            api_key_id VARCHAR,
            line_item VARCHAR,
            description VARCHAR,
            cost_type VARCHAR,
            model VARCHAR,
            token_type VARCHAR,
            service_tier VARCHAR,
            context_window VARCHAR,
            amount_usd DECIMAL(38, 15) NOT NULL,
            quantity DOUBLE,
            synced_at TIMESTAMP NOT NULL,
            PRIMARY KEY (provider, bucket_start, dims_key)
        );

        -- API keys by id: names and the provider's own redacted hint, never key material.
        CREATE TABLE api_keys (
            provider VARCHAR NOT NULL,
            api_key_id VARCHAR NOT NULL,
            name VARCHAR,
            redacted_hint VARCHAR,
            project_id VARCHAR,
            workspace_id VARCHAR,
            status VARCHAR,
            created_at TIMESTAMP,
            updated_at TIMESTAMP NOT NULL,
            PRIMARY KEY (provider, api_key_id)
        );

        -- OpenAI projects and Anthropic workspaces by id.
        CREATE TABLE projects (
            provider VARCHAR NOT NULL,
            project_id VARCHAR NOT NULL,
            name VARCHAR,
            kind VARCHAR NOT NULL,
            status VARCHAR,
            updated_at TIMESTAMP NOT NULL,
            PRIMARY KEY (provider, project_id)
        );

        -- Per provider and endpoint: the window synced so far and the last outcome.
        CREATE TABLE sync_state (
            provider VARCHAR NOT NULL,
            endpoint VARCHAR NOT NULL,
            covered_from TIMESTAMP,
            covered_to TIMESTAMP,
            last_success_at TIMESTAMP,
            last_attempt_at TIMESTAMP,
            last_error VARCHAR,
            PRIMARY KEY (provider, endpoint)
        );

        -- Per-token rates expanded from the catalog by pricing/cost.py's resolve_rates, so rows are
        -- priced in bulk by the same rules as the cost function. Rebuilt when the catalog changes.
        CREATE TABLE rates (
            model VARCHAR NOT NULL,
            valid_from TIMESTAMP NOT NULL,
            valid_to TIMESTAMP NOT NULL,
            tier VARCHAR NOT NULL,
            long_context BOOLEAN NOT NULL,
            threshold_tokens BIGINT,
            r_input DECIMAL(38, 18) NOT NULL,
            r_cached DECIMAL(38, 18) NOT NULL,
            r_cache_write DECIMAL(38, 18) NOT NULL,
            r_cache_write_1h DECIMAL(38, 18) NOT NULL,
            r_output DECIMAL(38, 18) NOT NULL
        );

        -- Model names as sources write them, resolved to catalog ids (NULL: unpriced).
        CREATE TABLE model_map (raw_model VARCHAR PRIMARY KEY, model_id VARCHAR, provider VARCHAR);
        """,
    ),
    Migration(
        2,
        "budgets: a spending limit per scope and calendar period",
        """
        -- One budget per scope and period. scope_id is '' for the whole organisation so that the
        -- unique key also holds there (NULLs never collide). Amounts are exact USD.
        CREATE SEQUENCE budget_ids START 1;
        CREATE TABLE budgets (
            budget_id BIGINT PRIMARY KEY,
            scope VARCHAR NOT NULL,
            scope_id VARCHAR NOT NULL,
            period VARCHAR NOT NULL,
            amount_usd DECIMAL(38, 15) NOT NULL,
            created_at TIMESTAMP NOT NULL,
            updated_at TIMESTAMP NOT NULL,
            UNIQUE (scope, scope_id, period)
        );
        """,
    ),
)

LATEST = MIGRATIONS[-1].version


def current_version(conn: Connection) -> int:
    """The schema version of an open database (0 when empty)."""
    exists = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
    ).fetchone()[0]
    if not exists:
        return 0
    row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def known_version(conn: Connection, where: str = "the database") -> int:
    """The schema version, refusing a database that a newer costhawk-mcp has migrated past ours.

    Migrations only go forward: an older costhawk cannot know what a newer migration changed, so it
    neither writes to such a file nor reads it (its queries might silently miss new columns' meaning).
    """
    have = current_version(conn)
    if have > LATEST:
        from costhawk_mcp import __version__

        raise StoreError(
            f"{where} was written by a newer costhawk-mcp (schema version {have}; this costhawk-mcp "
            f"{__version__} knows versions up to {LATEST}); upgrade: pip install --upgrade costhawk-mcp "
            "(or point --db / COSTHAWK_DB at another file)"
        )
    return have


def migrate(conn: Connection, where: str = "the database") -> list[int]:
    """Apply every missing migration inside the caller's transaction; returns the versions applied.

    `where` names the database in the error raised when a newer costhawk-mcp wrote it.
    """
    have = known_version(conn, where)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    applied: list[int] = []
    for migration in MIGRATIONS:
        if migration.version <= have:
            continue
        conn.execute(migration.sql)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [migration.version, migration.name, utcnow()])
        applied.append(migration.version)
    return applied
