"""Turns domain errors into MCP tool errors the model can read and act on.

The SDK reports any exception other than `ToolError` as a bare "Error executing tool", so every
handler is wrapped: a `CosthawkError` becomes a `ToolError` with its own message, and a bug becomes a
`ToolError` that names the tool and says the details are in the server log (stderr), never a
traceback or internal detail on the wire.

The SDK also drops argument names a tool does not declare, so a typo (`moedl`) would silently fall back
to a default. `StrictArguments`, a server middleware installed by `build_server`, refuses such a call
before it runs, naming the unknown argument and listing the allowed ones; prompts get the same check
(and a readable error for an unknown prompt) as INVALID_PARAMS protocol errors.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from mcp import MCPError
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import INVALID_PARAMS, CallToolResult, TextContent

from costhawk_mcp.errors import CosthawkError

if TYPE_CHECKING:
    from mcp.server import MCPServer

log = logging.getLogger("costhawk_mcp.server")

P = ParamSpec("P")
R = TypeVar("R")


def _translate(name: str, exc: Exception) -> ToolError:
    if isinstance(exc, ToolError):
        return exc
    if isinstance(exc, CosthawkError):
        return ToolError(str(exc))
    log.exception("internal error in %s", name)
    return ToolError(f"internal error in {name} ({type(exc).__name__}); the server log has the details")


def guard(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap a sync or async handler so that every failure reaches the client as a readable ToolError."""
    name = fn.__name__
    if inspect.iscoroutinefunction(fn):
        async_fn = cast(Callable[P, Awaitable[Any]], fn)

        @functools.wraps(fn)
        async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            try:
                return await async_fn(*args, **kwargs)
            except Exception as exc:
                raise _translate(name, exc) from exc

        return cast(Callable[P, R], async_wrapper)

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise _translate(name, exc) from exc

    return wrapper


class StrictArguments:
    """Server middleware: refuse a tool call or prompt with an argument name it does not declare.

    The SDK validates values but ignores unknown names; a demanding user wants `moedl` reported, not a
    silent default. Checked against the same tool and prompt listings clients see, so every tool (and
    every tool added later) gets it without any per-handler code.
    """

    def __init__(self, mcp: MCPServer) -> None:
        self._mcp = mcp

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        params = ctx.params
        if ctx.request_id is not None and params is not None and isinstance(params.get("name"), str):
            name: str = params["name"]
            arguments = params.get("arguments")
            if ctx.method == "tools/call" and isinstance(arguments, Mapping):
                refusal = await self._check_tool(name, arguments)
                if refusal is not None:
                    log.info("tool %r refused: %s", name, refusal)
                    return CallToolResult(
                        content=[TextContent(type="text", text=f"Error executing tool {name}: {refusal}")],
                        is_error=True,
                    )
            elif ctx.method == "prompts/get" and (arguments is None or isinstance(arguments, Mapping)):
                await self._check_prompt(name, arguments or {})
        return await call_next(ctx)

    async def _check_tool(self, name: str, arguments: Mapping[str, Any]) -> str | None:
        tool = next((t for t in await self._mcp.list_tools() if t.name == name), None)
        if tool is None:
            return None  # the SDK answers "Unknown tool"
        allowed = list(tool.input_schema.get("properties") or {})
        return _unknown(arguments, allowed)

    async def _check_prompt(self, name: str, arguments: Mapping[str, Any]) -> None:
        prompts = await self._mcp.list_prompts()
        prompt = next((p for p in prompts if p.name == name), None)
        if prompt is None:
            known = ", ".join(sorted(p.name for p in prompts))
            raise MCPError(code=INVALID_PARAMS, message=f"unknown prompt {name!r}; available: {known}")
        declared = prompt.arguments or []
        refusal = _unknown(arguments, [a.name for a in declared])
        if refusal is None:
            missing = [a.name for a in declared if a.required and a.name not in arguments]
            refusal = f"missing required argument {missing[0]!r}" if missing else None
        if refusal is not None:
            raise MCPError(code=INVALID_PARAMS, message=f"prompt {name}: {refusal}")


def _unknown(given: Iterable[str], allowed: list[str]) -> str | None:
    """The refusal for argument names outside `allowed` (each with a close match when one exists), or None."""
    unknown = [key for key in given if key not in allowed]
    if not unknown:
        return None
    named = []
    for key in unknown:
        close = difflib.get_close_matches(key, allowed, n=1)
        named.append(_quote(key) + (f" (did you mean {close[0]!r}?)" if close else ""))
    noun = "unknown argument" if len(unknown) == 1 else "unknown arguments"
    listed = ", ".join(allowed) if allowed else "none (it takes no arguments)"
    return f"{noun} {', '.join(named)}; allowed: {listed}"


def _quote(name: str, limit: int = 60) -> str:
    """A caller-supplied name, quoted and cut short so a huge one cannot flood the answer or the log."""
    return repr(name) if len(name) <= limit else f"{name[:limit]!r}… ({len(name)} characters)"
