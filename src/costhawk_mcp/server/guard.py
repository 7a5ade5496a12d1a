"""Turns domain errors into MCP tool errors the model can read and act on.

The SDK reports any exception other than `ToolError` as a bare "Error executing tool", so every
handler is wrapped: a `CosthawkError` becomes a `ToolError` with its own message, and a bug becomes a
`ToolError` that names the tool and says the details are in the server log (stderr), never a
traceback or internal detail on the wire.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, cast

from mcp.server.mcpserver.exceptions import ToolError

from costhawk_mcp.errors import CosthawkError

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
