"""Helpers for tests that drive a real `costhawk-mcp serve` child process over the network.

The pattern (MCP_SDK.md §8): pick a free 127.0.0.1 port, `Popen` the server with its stdout and
stderr in files, poll the port with bounded waits, and always stop the child by its PID with
SIGTERM (a clean uvicorn shutdown) in `finally`, killing it only if it ignores that.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mcp import StdioServerParameters

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0

# A legacy-era initialize request, for raw HTTP probes with httpx.
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}},
}
ACCEPT = {"Accept": "application/json, text/event-stream"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve_command(transport: str, port: int | None = None) -> list[str]:
    """`costhawk-mcp serve` run by this interpreter, so the child uses the same venv."""
    command = [sys.executable, "-m", "costhawk_mcp", "serve", "--transport", transport]
    if port is not None:
        command += ["--host", "127.0.0.1", "--port", str(port)]
    return command


def stdio_params(home: Path, tiktoken_cache: Path, **env: str) -> StdioServerParameters:
    """`costhawk-mcp serve` over stdio with `home` as its costhawk home, an empty tiktoken cache (so a
    download would show) and unbuffered output, plus `env`."""
    command = serve_command("stdio")
    base = {"COSTHAWK_HOME": str(home), "TIKTOKEN_CACHE_DIR": str(tiktoken_cache), "PYTHONUNBUFFERED": "1"}
    return StdioServerParameters(command=command[0], args=command[1:], env={**base, **env})


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test's own environment (already isolated by conftest) plus `extra`, unbuffered."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@dataclass
class ServerProcess:
    """A running server child and where its output goes."""

    proc: subprocess.Popen[bytes]
    port: int
    stdout_path: Path
    stderr_path: Path

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://127.0.0.1:{self.port}"

    def stdout(self) -> str:
        """Everything the child wrote to stdout so far."""
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        """Everything the child wrote to stderr so far."""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


def wait_port(server: ServerProcess, timeout: float = START_TIMEOUT_S) -> None:
    """Poll until the child accepts TCP connections; fail early, with its stderr, if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(f"server exited with {server.proc.returncode}:\n{server.stderr()}")
        with socket.socket() as sock:
            sock.settimeout(1.0)
            if sock.connect_ex(("127.0.0.1", server.port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"server did not open port {server.port} within {timeout} s:\n{server.stderr()}")


def stop(proc: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_S) -> int:
    """SIGTERM by PID, wait, kill only if it ignores that; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@contextmanager
def running_server(
    transport: str, workdir: Path, *, env: Mapping[str, str] | None = None, port: int | None = None
) -> Iterator[ServerProcess]:
    """Start `costhawk-mcp serve --transport TRANSPORT` on a free port and stop it afterwards."""
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    stdout_path = workdir / f"{transport}-{port}.stdout"
    stderr_path = workdir / f"{transport}-{port}.stderr"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            serve_command(transport, port), stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=child_env(env)
        )
    server = ServerProcess(proc, port, stdout_path, stderr_path)
    try:
        wait_port(server)
        yield server
    finally:
        stop(proc)


def assert_no_traceback(stderr: str) -> None:
    """A server may log warnings, but never a Python traceback."""
    assert "Traceback (most recent call last)" not in stderr, stderr
