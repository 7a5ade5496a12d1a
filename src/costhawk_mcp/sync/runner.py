"""One sync: which providers, which window, fetched concurrently, written page by page.

For each provider whose admin key is set, every usage and cost endpoint is fetched concurrently (at
most `concurrency` requests in flight overall, on one `httpx.AsyncClient`), together with the key
and project names. Pages flow through a buffer to a single writer that stores them in short
transactions — whatever is waiting when it is free, plus whatever arrives within `_LINGER_S`, at
most `_BATCH_BYTES` of page bodies — in a worker thread, so the event loop keeps fetching
meanwhile, and reports progress after each. Every transaction costs about a fifth of a second of
CPU whatever its size (opening the file, planning the statements, DuckDB's checkpoint when the
connection closes), so a long sync writes a few large batches rather than many small ones; the
last batch goes as soon as the last page is in. A sync interrupted at any point keeps every page
written; the next run starts again from the last synced point, and whatever was fetched but not
yet written is simply fetched again.

The event loop validates only what pagination needs of a usage page (its envelope); the writer
validates the rest of each page (`Endpoint.check`) in its worker thread right before writing it.
Validating a large page holds the GIL for milliseconds at a time, and DuckDB takes the GIL between
its execution tasks, so validation running on the event loop while DuckDB writes slows the writer
several-fold; in the writer's thread the two alternate instead. A page that fails validation fails
its endpoint exactly as a fetch error does: the pages before it stay written, it and the endpoint's
later pages are not, and the endpoint stops fetching.

Windows are UTC-aligned. By default each endpoint starts a few days before the end of what it last
synced (`TRAILING_DAYS`: the newest buckets keep growing until they close, so they are fetched
again), or `DEFAULT_DAYS` back on the first sync, and runs to now (no end sent, so the provider
returns everything up to the current, still open, bucket).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from pydantic import BaseModel, Field, PrivateAttr

from costhawk_mcp import __version__
from costhawk_mcp.config import Settings
from costhawk_mcp.errors import InvalidArgument, ProviderAuthError, ProviderError
from costhawk_mcp.store import sync_store
from costhawk_mcp.store.db import utcnow
from costhawk_mcp.store.store import Store
from costhawk_mcp.store.sync_store import Page
from costhawk_mcp.sync.anthropic import AnthropicAdapter
from costhawk_mcp.sync.base import WIDTHS, Adapter, Endpoint, FetchedPage, Names
from costhawk_mcp.sync.http import ProviderClient, RetryPolicy, Sleep, paginate
from costhawk_mcp.sync.openai import OpenAIAdapter

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("costhawk_mcp.sync")

Progress = Callable[[float, float, str], Awaitable[None]]

DEFAULT_DAYS = 30
TRAILING_DAYS = 3
NAMES_ENDPOINT = "api_keys"
_DAY = timedelta(days=1)
_BUFFER = 16  # pages fetched ahead of the writer (a usage page body is up to a few MB)
_BATCH_BYTES = 64_000_000  # page bodies per write transaction
_BATCH_JOBS = 64
# How long the writer waits for more pages before a write. The last write, of whatever arrived
# during the one before, is the sync's tail after its last page: shorter lingers keep it small at
# the price of a few more transactions (bench_sync.py, four paired runs of five rounds: sync / bare
# fetch median 1.20 at 0.5 s against 1.33 at 2 s).
_LINGER_S = 0.5


class EndpointSync(BaseModel):
    """What one endpoint fetched."""

    endpoint: str
    window_start: datetime = Field(description="first bucket requested (UTC)")
    window_end: datetime | None = Field(description="end of the window (UTC, exclusive); null: up to now")
    pages: int = 0
    buckets: int = 0
    rows: int = 0
    error: str | None = None


class ProviderSync(BaseModel):
    """What one provider's sync did."""

    provider: str
    key_variable: str = Field(description="the environment variable the admin key came from")
    endpoints: list[EndpointSync]
    api_keys: int = Field(default=0, description="API key names stored")
    projects: int = Field(default=0, description="projects (OpenAI) or workspaces (Anthropic) stored")
    http_requests: int = 0
    error: str | None = None


class SyncReport(BaseModel):
    """The outcome of a sync."""

    bucket_width: str
    started_at: datetime
    finished_at: datetime
    providers: list[ProviderSync]
    skipped: list[str] = Field(description="providers not synced, and why")
    pages: int
    usage_rows: int
    cost_rows: int
    complete: bool = Field(description="true when every endpoint of every synced provider finished")
    errors: list[str]
    _auth_failed: bool = PrivateAttr(default=False)


def raise_for_errors(report: SyncReport) -> None:
    """Raise the report's errors as one `ProviderError` (`ProviderAuthError` when a key was rejected)."""
    if not report.errors:
        return
    text = "; ".join(report.errors)
    text += (
        f". Everything fetched before the failure is stored ({report.pages} pages this run); "
        "run sync again to complete it."
    )
    if report._auth_failed:
        raise ProviderAuthError(text)
    raise ProviderError(text)


def _adapters() -> list[Adapter]:
    return [OpenAIAdapter(), AnthropicAdapter()]


def _key(settings: Settings, adapter: Adapter) -> str | None:
    return settings.openai_admin_key if adapter.provider == "openai" else settings.anthropic_admin_key


def _base_url(settings: Settings, adapter: Adapter) -> str:
    url = settings.openai_base_url if adapter.provider == "openai" else settings.anthropic_base_url
    if not url.startswith(("http://", "https://")):
        variable = f"COSTHAWK_{adapter.provider.upper()}_BASE_URL"
        raise InvalidArgument(variable, f"expected an http:// or https:// URL, got {url!r}")
    return url


def choose_providers(settings: Settings, provider: str) -> tuple[list[tuple[Adapter, str]], list[str]]:
    """The adapters to sync with their keys, and the skipped providers with the reason."""
    if provider not in ("openai", "anthropic", "all"):
        raise InvalidArgument("provider", f"expected openai, anthropic or all, got {provider!r}")
    chosen: list[tuple[Adapter, str]] = []
    skipped: list[str] = []
    wanted = [a for a in _adapters() if provider in ("all", a.provider)]
    for adapter in wanted:
        key = _key(settings, adapter)
        if key:
            _base_url(settings, adapter)
            chosen.append((adapter, key))
        else:
            skipped.append(f"{adapter.provider}: {adapter.key_env} is not set")
    if not chosen:
        variables = " or ".join(a.key_env for a in wanted) + (" (or both)" if len(wanted) > 1 else "")
        raise ProviderError(
            f"no admin key is set for {provider if provider != 'all' else 'any provider'}: set {variables} "
            "to an Admin API key of your organisation (keys are read from the environment only, never stored)"
        )
    return chosen, skipped


def floor_to(moment: datetime, width: timedelta) -> datetime:
    """The start of the UTC bucket of `width` (an hour or a day) containing `moment`."""
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if width >= _DAY:
        return day
    return moment.replace(minute=0, second=0, microsecond=0)


def ceil_to(moment: datetime, width: timedelta) -> datetime:
    """The first UTC bucket boundary of `width` at or after `moment`."""
    start = floor_to(moment, width)
    return start if start == moment else start + width


def plan_window(
    endpoint: Endpoint,
    *,
    since: datetime | None,
    until: datetime | None,
    covered_to: datetime | None,
    now: datetime,
) -> tuple[datetime, datetime | None]:
    """The aligned [start, end) an endpoint fetches; end None means up to now (open bucket included)."""
    width = endpoint.width
    if since is not None:
        start = floor_to(since, width)
    elif covered_to is not None:
        start = floor_to(min(covered_to, now) - timedelta(days=TRAILING_DAYS), _DAY)
    else:
        start = floor_to(now - timedelta(days=DEFAULT_DAYS), _DAY)
    end = None if until is None or until >= now else ceil_to(until, width)
    if end is not None and start >= end:  # an explicit end before the last synced point: the days before it
        start = floor_to(end - timedelta(days=DEFAULT_DAYS), _DAY)
    return start, end


def planned_pages(endpoint: Endpoint, start: datetime, end: datetime | None, now: datetime) -> int:
    """Pages the provider will return for the window (pagination is by buckets)."""
    stop = end if end is not None else ceil_to(now, endpoint.width)
    buckets = max(1, math.ceil((stop - start) / endpoint.width))
    return max(1, math.ceil(buckets / endpoint.limit))


@dataclass
class _PageJob:
    endpoint: Endpoint
    fetched: FetchedPage


@dataclass
class _NamesJob:
    adapter: Adapter
    names: Names
    result: ProviderSync


_Job = _PageJob | _NamesJob


@dataclass
class _Run:
    """Mutable state of one sync while it runs."""

    store: Store
    progress: Progress | None
    total: int = 0
    done: int = 0
    fatal: BaseException | None = None
    scope: anyio.CancelScope | None = None
    providers: list[ProviderSync] = field(default_factory=list)
    planned: dict[tuple[str, str], int] = field(default_factory=dict)
    results: dict[tuple[str, str], EndpointSync] = field(default_factory=dict)
    scopes: dict[tuple[str, str], anyio.CancelScope] = field(default_factory=dict)
    rejected: set[tuple[str, str]] = field(default_factory=set)  # endpoints whose page failed validation
    dropped: dict[tuple[str, str], int] = field(default_factory=dict)  # their pages not written

    def outcomes(self) -> list[sync_store.Outcome]:
        """(provider, endpoint, error) of every endpoint and of each provider's names, once all stopped."""
        done = [(provider, name, result.error) for (provider, name), result in self.results.items()]
        return done + [(result.provider, NAMES_ENDPOINT, result.error) for result in self.providers]

    def fail(self, exc: BaseException) -> None:
        """Stop the whole sync on a failure that is not the provider's (a store error, a bug)."""
        if self.fatal is None:
            self.fatal = exc
        if self.scope is not None:
            self.scope.cancel()

    async def report(self, message: str) -> None:
        if self.progress is not None:
            await self.progress(self.done, max(self.total, self.done), message)


async def run_sync(
    store: Store,
    settings: Settings,
    *,
    provider: str = "all",
    since: datetime | None = None,
    until: datetime | None = None,
    bucket_width: str = "1d",
    progress: Progress | None = None,
    policy: RetryPolicy | None = None,
    now: datetime | None = None,
    concurrency: int = 4,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Sleep = anyio.sleep,
) -> SyncReport:
    """Sync usage, costs and names from every chosen provider whose admin key is set.

    Provider failures do not raise: they are in the report's `errors` (use `raise_for_errors`);
    pages fetched before a failure stay stored. Store failures raise.
    """
    import httpx

    if bucket_width not in WIDTHS:
        raise InvalidArgument("bucket", f"expected 1d or 1h, got {bucket_width!r}")
    policy = policy or RetryPolicy()
    current = now or utcnow()
    if since is not None and since >= current:
        raise InvalidArgument("since", f"{since.isoformat()} is in the future")
    if since is not None and until is not None and until <= since:
        raise InvalidArgument("until", f"must be after since ({since.isoformat()}), got {until.isoformat()}")
    chosen, skipped = choose_providers(settings, provider)
    started = utcnow()
    run = _Run(store=store, progress=progress)

    states = await anyio.to_thread.run_sync(sync_store.sync_states, store)
    covered = {(s.provider, s.endpoint): s.covered_to for s in states}
    plans: list[tuple[Adapter, str, list[tuple[Endpoint, datetime, datetime | None]]]] = []
    for adapter, key in chosen:
        planned = []
        for endpoint in adapter.endpoints(bucket_width):
            start, end = plan_window(
                endpoint,
                since=since,
                until=until,
                covered_to=covered.get((adapter.provider, endpoint.name)),
                now=current,
            )
            pages = planned_pages(endpoint, start, end, current)
            run.planned[(adapter.provider, endpoint.name)] = pages
            run.total += pages
            run.results[(adapter.provider, endpoint.name)] = EndpointSync(
                endpoint=endpoint.name, window_start=start, window_end=end
            )
            planned.append((endpoint, start, end))
        run.total += 1  # the names
        plans.append((adapter, key, planned))

    provider_results = [
        ProviderSync(
            provider=adapter.provider,
            key_variable=adapter.key_env,
            endpoints=[run.results[(adapter.provider, e.name)] for e, _, _ in planned],
        )
        for adapter, _, planned in plans
    ]
    run.providers = provider_results
    report = SyncReport(
        bucket_width=bucket_width,
        started_at=started,
        finished_at=started,
        providers=provider_results,
        skipped=skipped,
        pages=0,
        usage_rows=0,
        cost_rows=0,
        complete=False,
        errors=[],
    )
    await run.report("starting")
    limiter = anyio.CapacityLimiter(concurrency)
    timeout = httpx.Timeout(policy.timeout_s, connect=min(10.0, policy.timeout_s))
    send, receive = anyio.create_memory_object_stream[_Job](_BUFFER)
    async with httpx.AsyncClient(
        timeout=timeout, transport=transport, headers={"User-Agent": f"costhawk-mcp/{__version__}"}
    ) as http:
        clients = [
            ProviderClient(
                http,
                label=adapter.label,
                base_url=_base_url(settings, adapter),
                headers=adapter.headers(key),
                secret=key,
                key_env=adapter.key_env,
                policy=policy,
                limiter=limiter,
                sleep=sleep,
            )
            for adapter, key, _ in plans
        ]
        async with anyio.create_task_group() as group:
            run.scope = group.cancel_scope
            group.start_soon(_writer, run, report, receive)
            async with send:
                for (adapter, _, planned), client, result in zip(plans, clients, provider_results, strict=True):
                    group.start_soon(_sync_provider, run, report, adapter, client, planned, result, send.clone())
        for client, result in zip(clients, provider_results, strict=True):
            result.http_requests = client.requests
    if run.fatal is not None:
        raise run.fatal
    report.finished_at = utcnow()
    report.complete = not report.errors
    run.total = run.done
    await run.report("done" if report.complete else "finished with errors")
    return report


async def _sync_provider(
    run: _Run,
    report: SyncReport,
    adapter: Adapter,
    client: ProviderClient,
    planned: list[tuple[Endpoint, datetime, datetime | None]],
    result: ProviderSync,
    send: MemoryObjectSendStream[_Job],
) -> None:
    """Every endpoint of one provider concurrently; a rejected key stops the provider at once."""
    auth_error: list[ProviderAuthError] = []
    async with send:  # open until the outcome below is recorded: the writer stores outcomes last
        async with anyio.create_task_group() as group:
            for endpoint, start, end in planned:
                group.start_soon(
                    _sync_endpoint,
                    run,
                    report,
                    adapter,
                    client,
                    endpoint,
                    (start, end),
                    send.clone(),
                    auth_error,
                    group,
                )
            group.start_soon(_sync_names, run, report, adapter, client, result, send.clone(), auth_error, group)
        if auth_error:
            message = str(auth_error[0])
            result.error = message
            for item in result.endpoints:
                if item.error is None:
                    item.error = f"not completed: {message}"
            report.errors.append(message)
            report._auth_failed = True


async def _sync_endpoint(
    run: _Run,
    report: SyncReport,
    adapter: Adapter,
    client: ProviderClient,
    endpoint: Endpoint,
    window: tuple[datetime, datetime | None],
    send: MemoryObjectSendStream[_Job],
    auth_error: list[ProviderAuthError],
    group: anyio.abc.TaskGroup,
) -> None:
    params = [*endpoint.params, *adapter.window_params(*window), ("limit", str(endpoint.limit))]
    key = (endpoint.provider, endpoint.name)
    outcome = run.results[key]
    pages = 0
    async with send:
        with anyio.CancelScope() as scope:  # cancelled by the writer when a page fails validation
            run.scopes[key] = scope
            try:
                async for fetched in paginate(client, endpoint.path, params, endpoint.parse):
                    pages += 1
                    await send.send(_PageJob(endpoint, fetched))
            except ProviderAuthError as exc:
                auth_error.append(exc)
                group.cancel_scope.cancel()
            except ProviderError as exc:
                outcome.error = str(exc)
                report.errors.append(str(exc))
                log.warning("%s", exc)
            except Exception as exc:
                run.fail(exc)
            finally:
                _settle_total(run, endpoint, pages)


def _settle_total(run: _Run, endpoint: Endpoint, fetched: int) -> None:
    """Once an endpoint stops fetching, make the progress total match the pages it will write."""
    key = (endpoint.provider, endpoint.name)
    expected = fetched - run.dropped.get(key, 0)
    if expected < run.planned[key]:
        run.total -= run.planned[key] - expected
        run.planned[key] = expected


async def _sync_names(
    run: _Run,
    report: SyncReport,
    adapter: Adapter,
    client: ProviderClient,
    result: ProviderSync,
    send: MemoryObjectSendStream[_Job],
    auth_error: list[ProviderAuthError],
    group: anyio.abc.TaskGroup,
) -> None:
    async with send:
        try:
            names = await adapter.fetch_names(client)
        except ProviderAuthError as exc:
            auth_error.append(exc)
            group.cancel_scope.cancel()
            run.total -= 1
            return
        except ProviderError as exc:
            result.error = str(exc)
            report.errors.append(str(exc))
            log.warning("%s", exc)
            run.total -= 1
            return
        except Exception as exc:
            run.fail(exc)
            return
        await send.send(_NamesJob(adapter, names, result))


async def _writer(run: _Run, report: SyncReport, receive: MemoryObjectReceiveStream[_Job]) -> None:
    """The one writer: jobs in short transactions, in a worker thread, then progress.

    Whatever is waiting when the writer is free, and whatever arrives within `_LINGER_S` seconds of
    that, is written together (up to `_BATCH_BYTES` of page bodies or `_BATCH_JOBS` jobs). When
    every fetcher has finished, the last batch goes at once and also records each endpoint's
    outcome.
    """
    pending: list[_Job] = []
    size = 0
    first_at = 0.0
    try:
        async with receive:
            while True:
                job: _Job | None = None
                ended = False
                wait = first_at + _LINGER_S - anyio.current_time() if pending else math.inf
                with anyio.move_on_after(max(0.0, wait)):
                    try:
                        job = await receive.receive()
                    except anyio.EndOfStream:
                        ended = True
                if job is not None:
                    if not pending:
                        first_at = anyio.current_time()
                    pending.append(job)
                    size += _size(job)
                    if size < _BATCH_BYTES and len(pending) < _BATCH_JOBS:
                        continue
                await _flush(run, report, pending, ended=ended)
                pending, size = [], 0
                if ended:
                    return
    except Exception as exc:
        run.fail(exc)


def _size(job: _Job) -> int:
    """Roughly what a job weighs in a write: a usage page by its body, a cost line like 200 bytes."""
    if isinstance(job, _NamesJob):
        return 0
    page = job.fetched.page
    return len(page.usage.body) if page.usage is not None else 200 * len(page.costs)


def _check_pages(jobs: list[_PageJob], rejected: frozenset[tuple[str, str]]) -> tuple[list[Page], list[_Dropped]]:
    """Validate the usage pages whose envelope alone was validated (in the writer's thread; see the
    module docstring). Returns the pages to write, with their result counts, and the pages dropped:
    one that failed validation (with the error), and every later page of its endpoint."""
    pages: list[Page] = []
    dropped: list[_Dropped] = []
    failed = set(rejected)
    for job in jobs:
        page, key = job.fetched.page, (job.endpoint.provider, job.endpoint.name)
        if key in failed:
            dropped.append(_Dropped(key, None))
            continue
        if job.endpoint.check is not None and page.usage is not None:
            try:
                page = replace(page, usage=replace(page.usage, results=job.endpoint.check(page.usage.body)))
            except ProviderError as exc:
                failed.add(key)
                dropped.append(_Dropped(key, str(exc)))
                continue
        pages.append(page)
    return pages, dropped


@dataclass(frozen=True)
class _Dropped:
    key: tuple[str, str]
    error: str | None  # why its endpoint failed; None for a later page of an endpoint that failed


async def _flush(run: _Run, report: SyncReport, jobs: list[_Job], *, ended: bool) -> None:
    page_jobs = [job for job in jobs if isinstance(job, _PageJob)]
    pages, dropped = await anyio.to_thread.run_sync(_check_pages, page_jobs, frozenset(run.rejected))
    for item in dropped:
        _drop(run, report, item)
    names = [
        sync_store.Names(job.adapter.provider, job.names.keys, job.names.projects)
        for job in jobs
        if isinstance(job, _NamesJob)
    ]
    outcomes = run.outcomes() if ended else []  # after the checks: they can fail an endpoint
    await anyio.to_thread.run_sync(sync_store.write_batch, run.store, pages, names, outcomes)
    for page in pages:
        await _count_page(run, report, page)
    for job in jobs:
        if isinstance(job, _NamesJob):
            job.result.api_keys = len(job.names.keys)
            job.result.projects = len(job.names.projects)
            run.done += 1
            await run.report(f"{job.adapter.provider}: {len(job.names.keys)} API key names stored")


def _drop(run: _Run, report: SyncReport, item: _Dropped) -> None:
    """A page not written: its endpoint fails (on the page that failed validation) and stops fetching."""
    key = item.key
    run.dropped[key] = run.dropped.get(key, 0) + 1
    if run.planned[key] > run.results[key].pages:
        run.planned[key] -= 1
        run.total -= 1
    if item.error is None:
        return
    run.rejected.add(key)
    outcome = run.results[key]
    outcome.error = item.error
    report.errors.append(item.error)
    log.warning("%s", item.error)
    scope = run.scopes.get(key)
    if scope is not None:
        scope.cancel()


async def _count_page(run: _Run, report: SyncReport, page: Page) -> None:
    key = (page.provider, page.endpoint)
    outcome = run.results[key]
    outcome.pages += 1
    outcome.buckets += len(page.buckets)
    outcome.rows += page.rows
    if outcome.pages > run.planned[key]:
        run.planned[key] = outcome.pages
        run.total += 1
    report.pages += 1
    report.usage_rows += page.usage_rows
    report.cost_rows += len(page.costs)
    run.done += 1
    await run.report(f"{page.provider} {page.endpoint}: page {outcome.pages} stored ({page.rows} rows)")
