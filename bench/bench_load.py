"""Load: 50 concurrent MCP clients against a real `costhawk-mcp serve` on one million request rows.

    .venv/bin/python bench/bench_load.py [--transports streamable-http,sse] [--clients 50] [--calls 200]
                                         [--client-procs 2] [--rows 1000000] [--rss-growth-pct 10]

For each transport it starts `costhawk-mcp serve --transport T` on 127.0.0.1 (a subprocess) over a copy
of the one-million-row store that bench_usage_tools.py builds (bench/out/usage-1000000.duckdb, built on
first use), sets four budgets through the protocol, then runs `--clients` SDK `Client` sessions split
over `--client-procs` client processes (anyio tasks inside each). Every client makes `--calls` calls
from a realistic mix (estimate_prompt, lookup_pricing, resource reads, top_expensive_keys,
cost_per_query with and without drill-down, spend_summary, model_swap_savings, budget_status, now
and then detect_anomalies and a set_budget write) in two equal phases: a warm-up phase and a second
phase, with the server's RSS read from /proc/<pid>/status after each.

It prints per tool the calls, errors, p50 and p99 latency, and per transport the wall time,
throughput, CPU seconds of server and clients, and server RSS (at start, after the warm-up phase,
after the second phase, peak). Exit status 1 on any error (a tool error, a transport exception, a
traceback in the server log, a server that died) or when the second phase grows the server's RSS by
more than `--rss-growth-pct` percent: after the warm-up every cache is full (DuckDB's buffer pool
holds the whole 40 MB file, the catalog and the tokenizers are loaded, the thread pools and malloc
arenas are at their working size), so an equal second phase should need no new memory; growth
beyond 10 % of a ~0.3-0.5 GB process (30-50 MB, i.e. several KB per call) means something
accumulates per call.

The machine has 2 cores: the server (uvicorn's event loop, anyio's 40 worker threads, DuckDB's
scheduler threads) and the client processes share them, so the figures are the whole system's, not
the server's alone; CPU seconds are printed for both sides.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import traceback
from collections import defaultdict
from pathlib import Path
from typing import Any

import anyio

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
WORK = OUT / "load"
HOME = OUT / "bench-home"  # no user catalog: the packaged one, which priced the generated rows

END = "2026-11-27"  # the generated requests cover the 60 days before this
MODELS = [
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "o3",
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "mistral-large-latest",
]
SWAPS = [
    ("gpt-4o", "gpt-4o-mini"),
    ("gpt-4.1", "gpt-4o-mini"),
    ("claude-sonnet-4-5", "claude-haiku-4-5"),
    ("gemini-2.5-pro", "gemini-2.5-flash"),
    ("o3", "gpt-4.1"),
]
BUDGETS = [
    {"scope": "org", "amount_usd": 250000, "period": "month"},
    {"scope": "provider", "scope_id": "openai", "amount_usd": 40000, "period": "week"},
    {"scope": "project", "scope_id": "project-3", "amount_usd": 30000, "period": "month"},
    {"scope": "api_key", "scope_id": "key-07", "amount_usd": 500, "period": "day"},
]
PARAGRAPH = (
    "You are a support assistant for an online store. Answer the customer's question using the order "
    "history and the policy excerpts below; quote the policy when you refuse a refund. "
)

# (label, weight): the share of calls each kind gets. Cheap calls dominate, as in an assistant session;
# the scans over a month of requests are a third; anomaly detection is occasional; writes are rare.
MIX: list[tuple[str, float]] = [
    ("estimate_prompt", 22),
    ("lookup_pricing", 14),
    ("read pricing://models/{model}", 7),
    ("read pricing://providers/{provider}", 3),
    ("read costhawk://sync-status", 3),
    ("top_expensive_keys", 9),
    ("cost_per_query", 6),
    ("cost_per_query (query_id)", 6),
    ("spend_summary", 10),
    ("model_swap_savings", 8),
    ("budget_status", 9),
    ("detect_anomalies", 1.5),
    ("set_budget", 0.5),
]


def window(rng: random.Random) -> dict[str, Any]:
    """A window ending where the data ends: the last 7, 14 or 30 days."""
    return {"days": rng.choice([7, 14, 30]), "end": END}


def next_call(rng: random.Random) -> tuple[str, str, Any]:
    """(label, tool name or resource URI, arguments or None for a resource read)."""
    label = rng.choices([m[0] for m in MIX], weights=[m[1] for m in MIX])[0]
    if label == "estimate_prompt":
        args: dict[str, Any] = {"model": rng.choice(MODELS), "expected_output_tokens": rng.randrange(50, 2000)}
        if rng.random() < 0.3:
            args["messages"] = [
                {"role": "system", "content": PARAGRAPH},
                {"role": "user", "content": PARAGRAPH * rng.randrange(1, 20)},
            ]
        else:
            args["text"] = PARAGRAPH * rng.choice([1, 5, 40, 200])
        if rng.random() < 0.3:
            args["compare_models"] = rng.sample(MODELS, 3)
        return label, "estimate_prompt", args
    if label == "lookup_pricing":
        return label, "lookup_pricing", {"model": rng.choice(MODELS)}
    if label.startswith("read pricing://models/"):
        return label, f"pricing://models/{rng.choice(MODELS)}", None
    if label.startswith("read pricing://providers/"):
        return label, f"pricing://providers/{rng.choice(['openai', 'anthropic', 'google', 'mistral'])}", None
    if label == "read costhawk://sync-status":
        return label, "costhawk://sync-status", None
    if label == "top_expensive_keys":
        args = {**window(rng), "limit": rng.choice([5, 10, 20])}
        if rng.random() < 0.3:
            args["provider"] = rng.choice(["openai", "anthropic", "google"])
        return label, "top_expensive_keys", args
    if label == "cost_per_query":
        args = {**window(rng), "limit": 10}
        if rng.random() < 0.3:
            args["feature"] = f"feature-{rng.randrange(12)}"
        return label, "cost_per_query", args
    if label == "cost_per_query (query_id)":
        # q-N is the query of requests 10N..10N+9; the last 30 days hold q-50000 onwards.
        return label, "cost_per_query", {"days": 30, "end": END, "query_id": f"q-{rng.randrange(50_000, 100_000)}"}
    if label == "spend_summary":
        group_by = rng.choice(["day", "model", "api_key", "provider", ["day", "model"], ["project", "feature"]])
        return label, "spend_summary", {**window(rng), "group_by": group_by}
    if label == "model_swap_savings":
        source, target = rng.choice(SWAPS)
        return label, "model_swap_savings", {**window(rng), "from_model": source, "to_model": target}
    if label == "budget_status":
        return label, "budget_status", {"as_of": f"2026-11-{rng.randrange(10, 27)}"}
    if label == "detect_anomalies":
        return label, "detect_anomalies", {"days": 30, "end": END, "dimension": rng.choice(["total", "model"])}
    budget = rng.choice(BUDGETS)
    return label, "set_budget", {**budget, "amount_usd": budget["amount_usd"] + rng.randrange(100)}


# ------------------------------------------------------------------------------------------ client side
def connect(transport: str, url: str) -> Any:
    from mcp.client import Client
    from mcp.client.sse import sse_client

    if transport == "sse":
        return Client(sse_client(url))
    return Client(url)


async def call_once(client: Any, target: str, args: Any) -> str | None:
    """One call; the error text when it failed (a tool error or an exception), else None."""
    try:
        if args is None:
            read = await client.read_resource(target)
            return None if read.contents else "empty resource"
        result = await client.call_tool(target, args)
        if result.is_error:
            return str(getattr(result.content[0], "text", result.content))[:300]
        return None
    except Exception as exc:
        return describe(exc)


def describe(exc: BaseException) -> str:
    """An exception in one line, unwrapping exception groups (the SDK's task groups raise them)."""
    while getattr(exc, "exceptions", None):  # an ExceptionGroup (a builtin from Python 3.11)
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    return f"{type(exc).__name__}: {exc}"[:300]


async def worker(transport: str, url: str, clients: list[int], calls: int, seed: int, out: Path) -> None:
    """Run one client session per index in `clients`; phases start when the parent says "go N"."""
    phases = 2
    per_phase = [calls // phases + (1 if p < calls % phases else 0) for p in range(phases)]
    go = [anyio.Event() for _ in range(phases)]
    done = [0] * phases
    finished = [anyio.Event() for _ in range(phases)]
    connected = anyio.Event()
    ready = 0
    records: list[list[Any]] = [[] for _ in range(phases)]

    def mark_ready() -> None:
        nonlocal ready
        ready += 1
        if ready == len(clients):
            connected.set()

    def mark_done(phase: int) -> None:
        done[phase] += 1
        if done[phase] == len(clients):
            finished[phase].set()

    async def one_client(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        was_ready, phase = False, 0
        try:
            async with connect(transport, url) as client:
                was_ready = True
                mark_ready()
                while phase < phases:
                    await go[phase].wait()
                    for _ in range(per_phase[phase]):
                        label, target, args = next_call(rng)
                        started = time.perf_counter()
                        error = await call_once(client, target, args)
                        records[phase].append([label, time.perf_counter() - started, error])
                    mark_done(phase)
                    phase += 1
        except Exception as exc:  # the session itself failed (connecting, or closing): an error too
            traceback.print_exception(exc, file=sys.stderr)
            records[min(phase, phases - 1)].append(["session", 0.0, describe(exc)])
        finally:
            if not was_ready:
                mark_ready()
            for rest in range(phase, phases):
                mark_done(rest)

    async with anyio.create_task_group() as group:
        for index in clients:
            group.start_soon(one_client, index)
        await connected.wait()
        print("ready", flush=True)
        for phase in range(phases):
            line = await anyio.to_thread.run_sync(sys.stdin.readline)
            assert line.strip() == f"go {phase + 1}", line
            go[phase].set()
            await finished[phase].wait()
            usage = resource.getrusage(resource.RUSAGE_SELF)
            path = out.with_name(f"{out.stem}-phase{phase + 1}.json")
            path.write_text(
                json.dumps({"records": records[phase], "cpu_s": usage.ru_utime + usage.ru_stime}), encoding="utf-8"
            )
            print(f"done {phase + 1} {path}", flush=True)


# ------------------------------------------------------------------------------------------ server side
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in KiB, and its CPU seconds × 100 (utime + stime ticks)."""
    status: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "Threads"):
            status[key] = int(value.split()[0])
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()
    status["cpu_ticks"] = int(fields[11]) + int(fields[12])
    return status


def mib(kib: int) -> str:
    return f"{kib / 1024:,.0f} MiB"


def wait_port(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        with socket.socket() as sock:
            sock.settimeout(1.0)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"the server did not open port {port} within {timeout:.0f} s")


def prepare_store(rows: int) -> Path:
    """A private copy of the benchmark store (the load run writes budgets), repriced if the catalog changed."""
    sys.path.insert(0, str(HERE))
    from bench_usage_tools import build_store

    from costhawk_mcp.config import Settings
    from costhawk_mcp.server.app import App

    source = OUT / f"usage-{rows}.duckdb"
    if not source.exists():
        build_store(source, rows)
    WORK.mkdir(parents=True, exist_ok=True)
    HOME.mkdir(parents=True, exist_ok=True)
    target = WORK / "load.duckdb"
    for stale in (target, Path(f"{target}.wal")):
        stale.unlink(missing_ok=True)
    shutil.copy(source, target)
    App(Settings.from_env({"COSTHAWK_HOME": str(HOME)}, db=str(target))).store.ensure_ready()
    return target


async def set_budgets(transport: str, url: str) -> None:
    async with connect(transport, url) as client:
        for budget in BUDGETS:
            result = await client.call_tool("set_budget", budget)
            if result.is_error:
                raise RuntimeError(f"set_budget failed: {result.content[0].text}")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    ordered = sorted(values)
    rank = max(1, int(-(-q * len(ordered) // 100)))
    return ordered[rank - 1] * 1000


def run_transport(transport: str, db: Path, args: argparse.Namespace) -> tuple[bool, dict[str, Any]]:
    port = free_port()
    path = "/sse" if transport == "sse" else "/mcp"
    url = f"http://127.0.0.1:{port}{path}"
    log = WORK / f"server-{transport}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSTHAWK_")}
    env.update(COSTHAWK_HOME=str(HOME), COSTHAWK_LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "costhawk_mcp", "serve", "--transport", transport, "--port", str(port)]
    command += ["--db", str(db)]
    with log.open("wb") as err:
        server = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    workers: list[subprocess.Popen[str]] = []
    problems: list[str] = []
    try:
        wait_port(server, port, log)
        anyio.run(set_budgets, transport, url)
        start = proc_status(server.pid)
        indexes = list(range(args.clients))
        shares = [indexes[i :: args.client_procs] for i in range(args.client_procs)]
        for n, share in enumerate(shares):
            command = [sys.executable, __file__, "--worker", transport, url, ",".join(map(str, share))]
            command += [str(args.calls), str(args.seed), str(WORK / f"records-{transport}-{n}.json")]
            workers.append(subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        for w in workers:
            assert w.stdout is not None
            line = w.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"a client process failed to start: {line!r}")
        phases: list[dict[str, Any]] = []
        for phase in (1, 2):
            began = time.perf_counter()
            for w in workers:
                assert w.stdin is not None
                w.stdin.write(f"go {phase}\n")
                w.stdin.flush()
            files = []
            for w in workers:
                assert w.stdout is not None
                line = w.stdout.readline().split()
                if line[:2] != ["done", str(phase)]:
                    raise RuntimeError(f"a client process failed in phase {phase}: {line!r}")
                files.append(Path(line[2]))
            wall = time.perf_counter() - began
            if server.poll() is not None:
                raise RuntimeError(f"the server died with {server.returncode} during phase {phase}")
            status = proc_status(server.pid)
            loaded = [json.loads(f.read_text(encoding="utf-8")) for f in files]
            phases.append(
                {
                    "wall_s": wall,
                    "status": status,
                    "records": [r for data in loaded for r in data["records"]],
                    "client_cpu_s": sum(data["cpu_s"] for data in loaded),
                }
            )
        for w in workers:
            w.wait(timeout=60)
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    server_log = log.read_text(encoding="utf-8", errors="replace")
    tracebacks = server_log.count("Traceback (most recent call last)")
    if tracebacks:
        problems.append(f"{tracebacks} traceback(s) in the server log {log}")
    return report(transport, args, start, phases, problems)


def report(
    transport: str, args: argparse.Namespace, start: dict[str, int], phases: list[dict[str, Any]], problems: list[str]
) -> tuple[bool, dict[str, Any]]:
    records = [r for p in phases for r in p["records"]]
    by_label: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, list[str]] = defaultdict(list)
    for label, seconds, error in records:
        by_label[label].append(seconds)
        if error is not None:
            errors[label].append(error)
    wall = sum(p["wall_s"] for p in phases)
    warm, last = phases[0]["status"], phases[1]["status"]
    growth = (last["VmRSS"] - warm["VmRSS"]) / warm["VmRSS"] * 100
    server_cpu = (last["cpu_ticks"] - start["cpu_ticks"]) / os.sysconf("SC_CLK_TCK")
    client_cpu = phases[1]["client_cpu_s"]

    tasks = -(-args.clients // args.client_procs)
    print(f"\n== {transport}: {args.clients} clients ({args.client_procs} client processes × {tasks} anyio tasks),")
    print(f"   {args.calls} calls each in 2 equal phases")
    print(f"{'tool / resource':40s} {'calls':>6s} {'errors':>6s} {'p50 ms':>9s} {'p99 ms':>9s} {'max ms':>9s}")
    for label, _ in [*MIX, ("session", 0)]:
        if label not in by_label:
            continue
        values = by_label[label]
        print(
            f"{label:40s} {len(values):6d} {len(errors[label]):6d} {percentile(values, 50):9.1f} "
            f"{percentile(values, 99):9.1f} {max(values) * 1000:9.1f}"
        )
    everything = [r[1] for r in records]
    total_errors = sum(len(e) for e in errors.values())
    print(
        f"{'all calls':40s} {len(everything):6d} {total_errors:6d} {percentile(everything, 50):9.1f} "
        f"{percentile(everything, 99):9.1f} {max(everything) * 1000:9.1f}"
    )
    for n, p in enumerate(phases, start=1):
        print(
            f"phase {n}: {len(p['records']):,} calls in {p['wall_s']:.1f} s = {len(p['records']) / p['wall_s']:.1f} calls/s"
        )
    print(f"total: {len(records):,} calls in {wall:.1f} s = {len(records) / wall:.1f} calls/s")
    print(f"CPU: server {server_cpu:.0f} s, clients {client_cpu:.0f} s (2 cores shared, {wall * 2:.0f} core-s of wall)")
    print(
        f"server RSS: at start {mib(start['VmRSS'])}, after warm-up {mib(warm['VmRSS'])}, after the second phase "
        f"{mib(last['VmRSS'])} ({growth:+.1f} %, bound +{args.rss_growth_pct:g} %), peak {mib(last['VmHWM'])}; "
        f"threads {last['Threads']}"
    )
    if total_errors:
        problems.append(f"{total_errors} failed calls")
        for label, texts in errors.items():
            for text in sorted(set(texts))[:3]:
                print(f"  error in {label}: {text}")
    if growth > args.rss_growth_pct:
        problems.append(f"RSS grew {growth:.1f} % in the second phase (bound {args.rss_growth_pct:g} %)")
    for problem in problems:
        print(f"FAILED: {problem}")
    summary = {
        "transport": transport,
        "clients": args.clients,
        "client_procs": args.client_procs,
        "calls_per_client": args.calls,
        "calls": len(records),
        "errors": total_errors,
        "wall_s": wall,
        "throughput_per_s": len(records) / wall,
        "server_cpu_s": server_cpu,
        "client_cpu_s": client_cpu,
        "rss_kib": {
            "start": start["VmRSS"],
            "after_warmup": warm["VmRSS"],
            "after": last["VmRSS"],
            "peak": last["VmHWM"],
        },
        "rss_growth_pct": growth,
        "per_tool": {
            label: {
                "calls": len(v),
                "errors": len(errors[label]),
                "p50_ms": percentile(v, 50),
                "p99_ms": percentile(v, 99),
                "median_ms": statistics.median(v) * 1000,
            }
            for label, v in by_label.items()
        },
        "problems": problems,
    }
    return not problems, summary


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        transport, url, indexes, calls, seed, out = sys.argv[2:8]
        anyio.run(worker, transport, url, [int(i) for i in indexes.split(",")], int(calls), int(seed), Path(out))
        return 0
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--transports", default="streamable-http,sse")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--calls", type=int, default=200, help="calls per client, split over the two phases")
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rss-growth-pct", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    db = prepare_store(args.rows)
    ok = True
    summaries = []
    for transport in args.transports.split(","):
        passed, summary = run_transport(transport, db, args)
        ok = ok and passed
        summaries.append(summary)
    (WORK / "results.json").write_text(json.dumps(summaries, indent=2), encoding="utf-8")
    print(f"\n{'all transports passed' if ok else 'FAILED'}; figures in {WORK / 'results.json'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
