"""A realistic, deterministic demo dataset: nine weeks of an imaginary team's LLM traffic.

What it contains, so the demo's answers have something to find:
- 8 API keys over 3 providers (OpenAI, Anthropic, Google) and 4 projects;
- a weekday rhythm (weekends quieter) and slow growth;
- agent workflows: one `query_id` groups 3-14 calls (planner, tool calls, final answer);
- nightly Batch API jobs, prompt caching (OpenAI cached input, Anthropic 5-minute and 1-hour writes
  and reads), long RAG prompts, and one model the catalog cannot price (a self-hosted fine-tune);
- a spend spike: on one day the support agent loops, retrying with its biggest prompts.

Rows are written as canonical JSON Lines (the import format) so the demo exercises the importer.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

DAYS = 63
SPIKE_DAYS_AGO = 9
SEED = 20261127


@dataclass(frozen=True)
class Workload:
    """One kind of traffic: who sends it, to which model, shaped how."""

    key_id: str
    key_name: str
    provider: str
    project: str
    feature: str
    model: str
    per_day: int  # queries on an average weekday
    calls: tuple[int, int]  # calls per query (min, max)
    input_tokens: tuple[int, int]
    output_tokens: tuple[int, int]
    cached_share: float = 0.0  # share of input read from the prompt cache
    cache_write_share: float = 0.0  # share of input written to the 5-minute cache
    cache_write_1h_share: float = 0.0
    batch: bool = False
    hours: tuple[int, int] = (7, 22)  # UTC hours the traffic arrives
    latency_ms: tuple[int, int] = (400, 4000)


WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "key_prod_chat",
        "prod-chat",
        "openai",
        "web-app",
        "chat",
        "gpt-4o",
        260,
        (1, 2),
        (900, 4000),
        (150, 700),
        cached_share=0.35,
    ),
    Workload(
        "key_prod_chat",
        "prod-chat",
        "openai",
        "web-app",
        "autocomplete",
        "gpt-4o-mini",
        900,
        (1, 1),
        (300, 900),
        (10, 60),
        cached_share=0.5,
        latency_ms=(120, 600),
    ),
    Workload(
        "key_support_agent",
        "support-agent",
        "anthropic",
        "support",
        "agent",
        "claude-sonnet-4-5",
        120,
        (3, 14),
        (6000, 30000),
        (200, 1500),
        cached_share=0.55,
        cache_write_share=0.08,
        cache_write_1h_share=0.02,
        latency_ms=(1500, 12000),
    ),
    Workload(
        "key_batch_summaries",
        "batch-summaries",
        "openai",
        "data-platform",
        "summarize",
        "gpt-4o-mini",
        700,
        (1, 1),
        (2000, 8000),
        (200, 600),
        batch=True,
        hours=(1, 4),
        latency_ms=(60000, 600000),
    ),
    Workload(
        "key_search_rag",
        "search-rag",
        "google",
        "web-app",
        "rag",
        "gemini-2.5-flash",
        400,
        (1, 3),
        (20000, 120000),
        (300, 1200),
        cached_share=0.2,
        latency_ms=(800, 6000),
    ),
    Workload(
        "key_research",
        "research-notebooks",
        "google",
        "research",
        "analysis",
        "gemini-2.5-pro",
        25,
        (2, 6),
        (40000, 260000),
        (1000, 6000),
        latency_ms=(5000, 40000),
    ),
    Workload(
        "key_internal_tools",
        "internal-tools",
        "anthropic",
        "support",
        "classify",
        "claude-haiku-4-5",
        500,
        (1, 1),
        (500, 2500),
        (5, 40),
        latency_ms=(200, 900),
    ),
    # Latency-tolerant work sent synchronously at night, and short answers from a big model: the kind of
    # spend savings_opportunities is meant to find.
    Workload(
        "key_ops_reports",
        "ops-reports",
        "anthropic",
        "data-platform",
        "nightly-report",
        "claude-sonnet-4-5",
        150,
        (1, 1),
        (8000, 20000),
        (800, 2000),
        hours=(2, 3),
        latency_ms=(8000, 30000),
    ),
    Workload(
        "key_prod_chat",
        "prod-chat",
        "openai",
        "web-app",
        "tagging",
        "gpt-4o",
        450,
        (1, 1),
        (400, 1500),
        (3, 25),
        latency_ms=(300, 1200),
    ),
    Workload(
        "key_labs",
        "labs-sandbox",
        "openai",
        "research",
        "experiments",
        "ft:gpt-4o-mini-2024-07-18:acme::demo",
        40,
        (1, 3),
        (500, 3000),
        (100, 800),
    ),
    Workload(
        "key_labs",
        "labs-sandbox",
        "openai",
        "research",
        "experiments",
        "acme-llama-3-70b-selfhosted",
        30,
        (1, 2),
        (800, 3000),
        (100, 600),
    ),
)


def generate(now: datetime | None = None, *, seed: int = SEED) -> Iterator[dict[str, object]]:
    """Yield canonical request records for the DAYS days up to `now` (UTC), deterministically per seed."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    rng = random.Random(seed)
    serial = 0
    for days_ago in range(DAYS, -1, -1):
        day = today - timedelta(days=days_ago)
        weekend = day.weekday() >= 5
        growth = 0.55 + 0.006 * (DAYS - days_ago)
        for w_index, w in enumerate(WORKLOADS):
            level = w.per_day * growth * (0.35 if weekend and not w.batch else 1.0)
            spike = days_ago == SPIKE_DAYS_AGO and w.key_id == "key_support_agent"
            queries = max(0, round(rng.gauss(level, level * 0.08)) * (4 if spike else 1))
            for q in range(queries):
                when = day + timedelta(
                    hours=rng.randint(*w.hours), minutes=rng.randint(0, 59), seconds=rng.randint(0, 59)
                )
                if when > now:
                    continue
                calls = rng.randint(*w.calls) * (3 if spike else 1)
                query_id = f"q-{day:%Y%m%d}-{w_index}-{q}" if calls > 1 or w.feature == "chat" else None
                for call in range(calls):
                    serial += 1
                    yield _record(rng, w, when + timedelta(seconds=call * rng.randint(1, 8)), serial, query_id, spike)


def _record(
    rng: random.Random, w: Workload, when: datetime, serial: int, query_id: str | None, spike: bool
) -> dict[str, object]:
    low, high = w.input_tokens
    input_tokens = rng.randint(low, high) if not spike else rng.randint((low + high) // 2, high)
    cached = int(input_tokens * w.cached_share * rng.uniform(0.6, 1.2)) if w.cached_share else 0
    write_5m = int(input_tokens * w.cache_write_share) if w.cache_write_share else 0
    write_1h = int(input_tokens * w.cache_write_1h_share) if w.cache_write_1h_share else 0
    cached = min(cached, input_tokens - write_5m - write_1h)
    failed = rng.random() < (0.15 if spike else 0.01)
    return {
        "request_id": f"req_{serial:08d}",
        "timestamp": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "provider": w.provider,
        "model": w.model,
        "api_key_id": w.key_id,
        "key_name": w.key_name,
        "project": w.project,
        "user": f"user_{rng.randint(1, 60):02d}",
        "query_id": query_id,
        "feature": w.feature,
        "input_tokens": input_tokens,
        "cached_input_tokens": cached,
        "cache_write_input_tokens": write_5m,
        "cache_write_1h_input_tokens": write_1h,
        "output_tokens": 0 if failed else rng.randint(*w.output_tokens),
        "batch": w.batch,
        "latency_ms": rng.randint(*w.latency_ms),
        "status": "error" if failed else "ok",
    }


def write_jsonl(path: Path, now: datetime | None = None, *, seed: int = SEED) -> int:
    """Write the dataset as JSON Lines; returns the number of records."""
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for record in generate(now, seed=seed):
            out.write(json.dumps(record, separators=(",", ":")))
            out.write("\n")
            count += 1
    return count
