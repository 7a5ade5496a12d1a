"""Fuzzing every tool, resource and prompt through an MCP client.

Arguments are generated from each tool's own `input_schema` (a new tool is fuzzed without touching
this file) and mixed with hostile values: wrong types, missing and unknown fields, empty, huge and
unicode strings, NaN and infinities, negative and enormous numbers, far-past and far-future dates,
unknown models and SQL fragments. The contract for every call: no transport or JSON-RPC error, never
the generic "internal error", every tool error names the field it is about, and a tool annotated
read-only leaves every table of the store exactly as it was (checksummed after every round of calls,
one call per tool).

The bulk run uses an in-memory database shared with the test (so the checksum is cheap) and one
server and client for all examples; a real `costhawk-mcp serve` over stdio with the database file
gets a few hundred calls of its own, and raw JSON-RPC lines carry NaN and Infinity literals that no
SDK client can send. Hypothesis runs derandomized, so CI sees the same calls every run.
"""

from __future__ import annotations

import json
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp import MCPError, StdioServerParameters, stdio_client
from mcp.types import INVALID_PARAMS, TextResourceContents, Tool

from costhawk_mcp.config import Settings
from costhawk_mcp.server.app import App
from costhawk_mcp.server.build import build_server
from fuzz_support import (
    BAD_DATES,
    CallLog,
    arguments_for,
    changed_tables,
    checked_call,
    encodable,
    file_checksums,
    finite_json,
    fuzz_settings,
    hostile_strings,
    populate,
    shorten,
    store_checksums,
    strings_for,
    sync_client,
    text_of,
)

pytestmark = pytest.mark.usefixtures("test_catalog")

ROUNDS = 150  # each round calls every read-only tool once: 150 x 14 tools = 2,100 calls
MAX_INPUT_BYTES = 64_000  # small, so the huge generated strings reach the size check cheaply
WRITE_CALLS = 240
RESOURCE_READS = 300
PROMPT_RENDERS = 200
STDIO_ROUNDS = 15  # 15 x 14 = 210 calls over a real stdio subprocess
WRITE_TOOLS = {"set_budget", "delete_budget"}
NO_NETWORK = "http://127.0.0.1:9"  # the discard port: a sync that tried anyway would fail here, locally


@pytest.fixture
def fuzz_app(settings: Settings) -> App:
    """A populated in-memory store, shared by the server under test and the test (for checksums)."""
    app = App(
        replace(
            settings,
            db_path=":memory:",
            max_input_bytes=MAX_INPUT_BYTES,
            openai_base_url=NO_NETWORK,
            anthropic_base_url=NO_NETWORK,
        )
    )
    populate(app.store)
    return app


def _read_only(tools: list[Tool]) -> dict[str, Tool]:
    return {t.name: t for t in tools if t.annotations is not None and t.annotations.read_only_hint}


def test_read_only_tools_survive_generated_arguments_and_leave_the_store_unchanged(fuzz_app: App) -> None:
    log = CallLog()
    with sync_client(build_server(fuzz_app.settings, app=fuzz_app)) as client:
        tools = _read_only(client.tools())
        assert len(tools) >= 14, sorted(tools)
        baseline = store_checksums(fuzz_app.store)

        @fuzz_settings(ROUNDS)
        @given(data=st.data())
        def one_round(data: st.DataObject) -> None:
            calls = []
            for name in sorted(tools):
                arguments = data.draw(arguments_for(tools[name]), label=name)
                checked_call(client, tools[name], arguments, log)
                calls.append((name, shorten(arguments)))
            changed = changed_tables(baseline, store_checksums(fuzz_app.store))
            assert changed == [], f"read-only calls changed {changed}: {calls}"

        one_round()
    print(f"\nread-only fuzz: {log.total} calls; {log.summary()}")
    assert log.total >= 2000
    assert all(log.calls[name] >= ROUNDS for name in tools), log.summary()
    # the generator must reach past validation: most tools succeed on a good share of calls
    succeeded = [name for name in tools if log.calls[name] - log.errors.get(name, 0) >= ROUNDS // 10]
    assert len(succeeded) >= len(tools) - 2, log.summary()


def test_write_tools_fail_cleanly_and_touch_only_budgets(fuzz_app: App) -> None:
    log = CallLog()
    with sync_client(build_server(fuzz_app.settings, app=fuzz_app)) as client:
        tools = {t.name: t for t in client.tools()}
        assert not any(tools[name].annotations.read_only_hint for name in (*WRITE_TOOLS, "sync_usage"))  # type: ignore[union-attr]
        baseline = store_checksums(fuzz_app.store)
        writable = {"budgets", "<sequences>"}

        @fuzz_settings(WRITE_CALLS)
        @given(name=st.sampled_from(sorted(WRITE_TOOLS)), data=st.data())
        def one_call(name: str, data: st.DataObject) -> None:
            arguments = data.draw(arguments_for(tools[name]), label="arguments")
            checked_call(client, tools[name], arguments, log)
            after = store_checksums(fuzz_app.store)
            assert set(changed_tables(baseline, after)) <= writable, (name, shorten(arguments))
            with fuzz_app.store.reading() as conn:
                bad = conn.execute(
                    "SELECT budget_id, scope, scope_id, period, amount_usd FROM budgets "
                    "WHERE NOT (amount_usd >= 0.01 AND amount_usd <= 1e12) "
                    "OR scope NOT IN ('org', 'provider', 'project', 'api_key') "
                    "OR period NOT IN ('month', 'week', 'day') "
                    "OR (scope <> 'org' AND (scope_id IS NULL OR trim(scope_id) = ''))"
                ).fetchall()
            assert bad == [], (name, shorten(arguments), bad)

        one_call()

        # sync_usage: no admin key is set, so every call fails, naming a bad argument or the variables,
        # and writes nothing (the base URLs point at a closed local port in case it tried anyway).
        sync = tools["sync_usage"]

        @fuzz_settings(60)
        @given(arguments=arguments_for(sync))
        def one_sync(arguments: dict[str, Any]) -> None:
            result = checked_call(client, sync, arguments, log, blame=("OPENAI_ADMIN_KEY", "ANTHROPIC_ADMIN_KEY"))
            assert result.is_error, shorten(arguments)

        before_sync = store_checksums(fuzz_app.store)
        one_sync()
        plain = text_of(client.call_tool("sync_usage", {}))
        assert "OPENAI_ADMIN_KEY" in plain and "ANTHROPIC_ADMIN_KEY" in plain, plain
        assert changed_tables(before_sync, store_checksums(fuzz_app.store)) == []
    print(f"\nwrite-tool fuzz: {log.total} calls; {log.summary()}")
    assert log.calls["sync_usage"] >= 40 and log.calls["set_budget"] >= 80 and log.calls["delete_budget"] >= 80


def _template_uri(template: str, value: str) -> str:
    """Fill a one-variable RFC 6570 template, escaping the value as a client would."""
    match = re.search(r"\{(\+?)(\w+)\}", template)
    assert match is not None, template
    reserved = match.group(1) == "+"
    return (
        template[: match.start()]
        + quote(value, safe="/" if reserved else "", errors="surrogatepass")
        + template[match.end() :]
    )


def test_every_resource_reads_or_refuses_with_invalid_params(fuzz_app: App) -> None:
    reads = CallLog()
    with sync_client(build_server(fuzz_app.settings, app=fuzz_app)) as client:
        static = [str(r.uri) for r in client.call(client.client.list_resources).resources]
        templates = [t.uri_template for t in client.call(client.client.list_resource_templates).resource_templates]
        assert {"pricing://models", "costhawk://sync-status"} <= set(static)
        assert len(templates) >= 2
        baseline = store_checksums(fuzz_app.store)
        for uri in static:  # every static resource answers, with JSON that has no NaN or infinity
            contents = client.call(client.client.read_resource, uri).contents
            assert isinstance(contents[0], TextResourceContents)
            assert finite_json(json.loads(contents[0].text)), uri

        odd_uris = st.sampled_from(
            (
                "pricing://nope",
                "pricing://models/",
                "pricing://models/..",
                "pricing://models/%2e%2e/%2e%2e/etc/passwd",
                "pricing://providers/",
                "costhawk://sync-status?x=1",
                "costhawk://sync-status/../../etc/passwd",
                "file:///etc/passwd",
                "pricing://models/" + "a" * 100_000,
            )
        )
        values = st.one_of(strings_for("model"), strings_for("provider"), hostile_strings())
        targets = st.one_of(st.tuples(st.sampled_from(templates), values).map(lambda tv: _template_uri(*tv)), odd_uris)

        @fuzz_settings(RESOURCE_READS)
        @given(uri=targets)
        def one_read(uri: str) -> None:
            try:
                result = client.call(client.client.read_resource, uri)
            except MCPError as exc:
                reads.add("refused", error=True)
                assert exc.error.code == INVALID_PARAMS, f"{shorten(uri)}: {exc.error.code} {exc.error.message[:200]}"
                return
            reads.add("read", error=False)
            assert result.contents and isinstance(result.contents[0], TextResourceContents), shorten(uri)
            assert finite_json(json.loads(result.contents[0].text)), shorten(uri)

        one_read()
        assert changed_tables(baseline, store_checksums(fuzz_app.store)) == []
    print(f"\nresource fuzz: {reads.total} reads; {reads.summary()}")
    assert reads.calls.get("read", 0) >= 10 and reads.calls.get("refused", 0) >= 100  # every distinct valid URI reads


def test_every_prompt_renders_or_refuses_naming_the_argument(fuzz_app: App) -> None:
    renders = CallLog()
    with sync_client(build_server(fuzz_app.settings, app=fuzz_app)) as client:
        prompts = {p.name: p for p in client.call(client.client.list_prompts).prompts}
        assert {"weekly_cost_review", "investigate_spike", "reduce_costs"} <= set(prompts)

        @st.composite
        def prompt_calls(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
            name = draw(st.sampled_from([*sorted(prompts), "no_such_prompt", "weekly_cost_revew"]))
            arguments: dict[str, str] = {}
            declared = [a.name for a in (prompts[name].arguments or [])] if name in prompts else []
            for arg in declared:
                if draw(st.booleans()):
                    arguments[arg] = draw(st.one_of(strings_for(arg), st.sampled_from(BAD_DATES), hostile_strings()))
            if draw(st.integers(0, 5)) == 0:
                arguments[draw(st.sampled_from(("dat", "week", "x", "")))] = draw(hostile_strings())
            return name, arguments

        @fuzz_settings(PROMPT_RENDERS)
        @given(call=prompt_calls())
        def one_render(call: tuple[str, dict[str, str]]) -> None:
            name, arguments = call
            try:
                result = client.call(client.client.get_prompt, name, arguments)
            except MCPError as exc:
                renders.add(name, error=True)
                message = exc.error.message
                assert exc.error.code == INVALID_PARAMS, f"{name}({shorten(arguments)}): {exc.error.code} {message}"
                names = [*arguments, *(a.name for a in (prompts[name].arguments or []))] if name in prompts else []
                assert "unknown prompt" in message or any(repr(n) in message or f"{n}:" in message for n in names), (
                    name,
                    shorten(arguments),
                    message,
                )
                return
            renders.add(name, error=False)
            assert result.messages and all(m.content.text for m in result.messages)  # type: ignore[union-attr]

        one_render()
    print(f"\nprompt fuzz: {renders.total} renders; {renders.summary()}")
    assert renders.total >= PROMPT_RENDERS and all(renders.calls.get(n, 0) - renders.errors.get(n, 0) for n in prompts)


def test_a_real_stdio_server_survives_generated_calls_on_the_database_file(
    settings: Settings, isolated_env: Path, tmp_path: Path
) -> None:
    populate(App(settings).store)
    baseline = file_checksums(settings.db_path)
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "costhawk_mcp", "serve"],
        env={
            "COSTHAWK_HOME": str(isolated_env),
            "TIKTOKEN_CACHE_DIR": str(tmp_path / "empty-tiktoken-cache"),
            "COSTHAWK_MAX_INPUT_BYTES": str(MAX_INPUT_BYTES),
            "COSTHAWK_OPENAI_BASE_URL": NO_NETWORK,
            "COSTHAWK_ANTHROPIC_BASE_URL": NO_NETWORK,
            "COSTHAWK_LOG_LEVEL": "INFO",
        },
    )
    log = CallLog()
    stderr_path = tmp_path / "stdio.stderr"
    with (
        stderr_path.open("w", encoding="utf-8") as errlog,
        sync_client(stdio_client(params, errlog=errlog), mode="legacy") as client,
    ):
        tools = _read_only(client.tools())

        @fuzz_settings(STDIO_ROUNDS)
        @given(data=st.data())
        def one_round(data: st.DataObject) -> None:
            for name in sorted(tools):
                arguments = data.draw(arguments_for(tools[name]).filter(encodable), label=name)
                checked_call(client, tools[name], arguments, log)

        one_round()
        assert client.call_tool("lookup_pricing", {"model": "test-gpt"}).is_error is False  # still alive
    print(f"\nstdio fuzz: {log.total} calls; {log.summary()}")
    assert log.total >= 200
    assert changed_tables(baseline, file_checksums(settings.db_path)) == []
    stderr = stderr_path.read_text(encoding="utf-8")
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr[-3000:]


# ------------------------------------------------------------------------------ raw JSON-RPC over stdio
class RawStdio:
    """A `costhawk-mcp serve` child spoken to in raw JSON-RPC lines (for values no SDK client sends)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.next_id = 0

    def request(self, method: str, params_json: str, timeout: float = 60.0) -> dict[str, Any]:
        """Send one request whose params are raw JSON text; the response with its id."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.next_id += 1
        line = f'{{"jsonrpc": "2.0", "id": {self.next_id}, "method": "{method}", "params": {params_json}}}\n'
        self.proc.stdin.write(line.encode("utf-8"))
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            raw = self.proc.stdout.readline()
            assert raw, f"the server closed stdout (exit code {self.proc.poll()})"
            message: dict[str, Any] = json.loads(raw)
            if message.get("id") == self.next_id:
                return message
        raise AssertionError(f"no answer to {method} within {timeout} s")

    def notify(self, method: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f'{{"jsonrpc": "2.0", "method": "{method}"}}\n'.encode())
        self.proc.stdin.flush()


@contextmanager
def raw_stdio_server(isolated_env: Path, tmp_path: Path) -> Iterator[tuple[RawStdio, Path]]:
    """A stdio server after the legacy initialize handshake; its stderr file for inspection."""
    stderr_path = tmp_path / "raw.stderr"
    env = {
        "COSTHAWK_HOME": str(isolated_env),
        "TIKTOKEN_CACHE_DIR": str(tmp_path / "empty-tiktoken-cache"),
        "PATH": "/usr/bin:/bin",
        "PYTHONUNBUFFERED": "1",
    }
    with stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "costhawk_mcp", "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
        )
    try:
        raw = RawStdio(proc)
        hello = raw.request(
            "initialize",
            '{"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}',
        )
        assert "result" in hello, hello
        raw.notify("notifications/initialized")
        yield raw, stderr_path
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _numeric_properties(tool: dict[str, Any]) -> list[str]:
    def numeric(node: dict[str, Any]) -> bool:
        kinds = node.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        return bool({"number", "integer"} & set(kinds)) or any(numeric(o) for o in node.get("anyOf", ()))

    return [name for name, node in tool["inputSchema"].get("properties", {}).items() if numeric(node)]


def test_nan_and_infinity_literals_on_the_wire_are_refused_naming_the_field(
    settings: Settings, isolated_env: Path, tmp_path: Path
) -> None:
    populate(App(settings).store)
    baseline = file_checksums(settings.db_path)
    required = {"estimate_prompt": '"model": "test-gpt", "text": "hi"', "lookup_pricing": '"model": "test-gpt"'}
    required |= {"model_swap_savings": '"from_model": "test-gpt", "to_model": "test-gpt-mini"'}
    required |= {"selfhost_breakeven": '"model": "test-gpt"', "set_budget": '"scope": "org"'}
    calls = 0
    with raw_stdio_server(isolated_env, tmp_path) as (raw, stderr_path):
        tools = raw.request("tools/list", "{}")["result"]["tools"]
        assert len(tools) >= 17
        for tool in tools:
            for prop in _numeric_properties(tool):
                for literal in ("NaN", "Infinity", "-Infinity", "1e400", "-1e400"):
                    given = required.get(tool["name"], "")
                    if f'"{prop}"' in given:
                        continue
                    arguments = f'{{{given}{", " if given else ""}"{prop}": {literal}}}'
                    answer = raw.request("tools/call", f'{{"name": "{tool["name"]}", "arguments": {arguments}}}')
                    calls += 1
                    assert "result" in answer, (tool["name"], arguments, answer)
                    result = answer["result"]
                    text = "".join(block.get("text", "") for block in result["content"])
                    assert result.get("isError") is True, (tool["name"], arguments, text[:300])
                    assert prop in text and "internal error" not in text, (tool["name"], arguments, text[:300])
        stderr = stderr_path.read_text(encoding="utf-8", errors="replace")
    assert calls >= 60, calls
    assert "Traceback" not in stderr, stderr[-3000:]
    assert changed_tables(baseline, file_checksums(settings.db_path)) == []


def test_string_numbers_nan_and_inf_in_memory_are_refused_too(fuzz_app: App) -> None:
    """The SDK parses a JSON string given for a number ('NaN', '1e400', 'inf') into a float, so the
    in-memory client can deliver NaN and infinities to every numeric argument as strings."""
    with sync_client(build_server(fuzz_app.settings, app=fuzz_app)) as client:
        log = CallLog()
        for tool in client.tools():
            if tool.name == "sync_usage":
                continue
            for prop in _numeric_properties({"inputSchema": tool.input_schema}):
                for text in ("NaN", "nan", "Infinity", "-inf", "1e400"):
                    base = {"model": "test-gpt", "text": "hi", "from_model": "test-gpt", "to_model": "test-gpt-mini"}
                    base |= {"scope": "org"}
                    arguments = {k: v for k, v in base.items() if k in (tool.input_schema.get("properties") or {})}
                    arguments[prop] = text
                    result = checked_call(client, tool, arguments, log)
                    assert result.is_error, (tool.name, arguments)
                    assert prop in text_of(result), (tool.name, arguments, text_of(result)[:300])
    assert log.total >= 60
