"""Cold start of `costhawk-mcp serve` (stdio) against a bare one-tool MCPServer, spawned the same way.

Each run spawns a fresh interpreter, writes a JSON-RPC `initialize` request to its stdin and times
until the first line of stdout (the reply). Runs alternate between the two servers so machine noise
hits both alike; medians are compared. Goal: costhawk / bare <= 1.5.

For costhawk it also times, informationally, the first `estimate_prompt` call after the handshake
(the catalog and the o200k tokenizer load on first use, not at start).

    python bench/bench_cold_start.py [--runs 12]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOAL = 1.5

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}},
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
ESTIMATE = {
    "jsonrpc": "2.0",
    "id": 2,
    "method": "tools/call",
    "params": {"name": "estimate_prompt", "arguments": {"model": "gpt-4o", "text": "How much will this cost?"}},
}


def send(proc: subprocess.Popen[bytes], message: dict[str, object]) -> None:
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(message).encode() + b"\n")
    proc.stdin.flush()


def reply(proc: subprocess.Popen[bytes], request_id: int) -> dict[str, object]:
    """The next stdout line that answers `request_id` (notifications are skipped)."""
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"server closed stdout before answering request {request_id}")
        message: dict[str, object] = json.loads(line)
        if message.get("id") == request_id:
            if "error" in message:
                raise RuntimeError(f"request {request_id} failed: {message['error']}")
            return message


def one_run(command: list[str], env: dict[str, str], first_call: bool) -> tuple[float, float | None]:
    """Seconds from spawn to the initialize reply, and (optionally) to the first estimate_prompt reply."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        send(proc, INITIALIZE)
        answer = reply(proc, 1)
        ready = time.perf_counter() - start
        assert "serverInfo" in answer["result"], answer  # type: ignore[operator]
        called: float | None = None
        if first_call:
            send(proc, INITIALIZED)
            begin = time.perf_counter()
            send(proc, ESTIMATE)
            result = reply(proc, 2)["result"]
            called = time.perf_counter() - begin
            assert not result.get("isError"), result  # type: ignore[union-attr]
        return ready, called
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # a stdio server exits when its input ends
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=12, help="runs per server (default 12)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="costhawk-bench-") as home:
        env = {**os.environ, "COSTHAWK_HOME": home, "PYTHONDONTWRITEBYTECODE": "1"}
        env.pop("COSTHAWK_LOG_LEVEL", None)
        ours_cmd = [sys.executable, "-m", "costhawk_mcp", "serve"]
        bare_cmd = [sys.executable, str(HERE / "bare_server.py")]
        # one unmeasured start each, so both find their .pyc files and the OS cache warm
        one_run(ours_cmd, env, first_call=False)
        one_run(bare_cmd, env, first_call=False)
        ours: list[float] = []
        bare: list[float] = []
        first_calls: list[float] = []
        for i in range(args.runs):
            for label in ("ours", "bare") if i % 2 == 0 else ("bare", "ours"):
                if label == "ours":
                    ready, called = one_run(ours_cmd, env, first_call=True)
                    ours.append(ready)
                    assert called is not None
                    first_calls.append(called)
                else:
                    bare.append(one_run(bare_cmd, env, first_call=False)[0])
    ours_median, bare_median = statistics.median(ours), statistics.median(bare)
    ratio = ours_median / bare_median
    print(f"cold start to initialize reply, {args.runs} runs each (interleaved), medians:")
    for label, runs in (("costhawk-mcp serve", ours), ("bare MCPServer", bare)):
        median_ms, low_ms, high_ms = (statistics.median(runs) * 1000, min(runs) * 1000, max(runs) * 1000)
        print(f"  {label:<20} {median_ms:7.0f} ms   (min {low_ms:.0f}, max {high_ms:.0f})")
    print(f"  ratio costhawk/bare  {ratio:7.2f}      goal <= {GOAL}: {'met' if ratio <= GOAL else 'MISSED'}")
    first_ms = statistics.median(first_calls) * 1000
    print(f"  first estimate_prompt after the handshake (loads catalog and tokenizer): {first_ms:.0f} ms")
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    raise SystemExit(main())
