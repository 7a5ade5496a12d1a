"""MCP handlers for prices and prompt estimates: parse, call the domain function, return its model."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from costhawk_mcp.analytics.estimate import EstimateResult, ExactCounter, estimate_prompt
from costhawk_mcp.errors import CosthawkError
from costhawk_mcp.pricing.catalog import ModelEntry, normalize_provider
from costhawk_mcp.pricing.views import ModelPricing, model_pricing
from costhawk_mcp.server.app import App
from costhawk_mcp.server.guard import guard
from costhawk_mcp.tokens import Message, TokenCount

INSTRUCTIONS = """\
- estimate_prompt: what a prompt (text or chat messages) will cost on a model before it is sent; \
compare_models prices the same prompt on other models, cheapest first. Token counts are exact for \
OpenAI models and a stated approximation with a low/high range for the others (exact_count=true asks \
Anthropic's or Google's count-tokens endpoint instead, when their API key is configured).
- lookup_pricing: one model's prices per million tokens (input, cached input, cache writes, output, \
batch, priority, long-context), limits, deprecation and price history.
- Resources pricing://models, pricing://models/{model} and pricing://providers/{provider} hold the \
same price data as JSON.
"""

READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)


class TextPart(BaseModel):
    """A text part of a message's content."""

    type: Literal["text"] = "text"
    text: str


class ChatMessage(BaseModel):
    """One chat message: role, content (a string or text parts) and an optional participant name."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart]
    name: str | None = None

    def to_message(self) -> Message:
        """The message as the token counter sees it."""
        content = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        return Message(role=self.role, content=content, name=self.name)


def register(mcp: MCPServer, app: App) -> None:
    """Add the pricing tools and resources to `mcp`."""

    @mcp.tool(name="estimate_prompt", annotations=READ_ONLY)
    @guard
    def estimate_prompt_tool(
        model: Annotated[
            str, Field(description="model id, e.g. 'gpt-4o', 'claude-sonnet-4-5', 'gemini/gemini-2.5-flash'")
        ],
        text: Annotated[str | None, Field(description="the prompt as plain text (give this or messages)")] = None,
        messages: Annotated[
            list[ChatMessage] | None,
            Field(description="the prompt as chat messages [{role, content, name?}] (give this or text)"),
        ] = None,
        expected_output_tokens: Annotated[int, Field(ge=0, le=10_000_000, description="tokens you expect back")] = 0,
        cached_input_tokens: Annotated[
            int, Field(ge=0, description="how many of the input tokens will be prompt-cache reads")
        ] = 0,
        batch: Annotated[bool, Field(description="price at Batch API rates")] = False,
        compare_models: Annotated[
            list[str], Field(max_length=50, description="other models to price the same prompt on")
        ] = [],  # noqa: B006 - the SDK builds the schema from this default; it is never mutated
        exact_count: Annotated[
            bool,
            Field(
                description="count Claude and Gemini prompts exactly with the provider's own count-tokens "
                "endpoint (a network call; needs ANTHROPIC_API_KEY or GEMINI_API_KEY). Off: offline approximation"
            ),
        ] = False,
    ) -> EstimateResult:
        """What a prompt will cost on a model before it is sent, and on other models for comparison.

        Counts tokens offline (exact for OpenAI models, a stated approximation with a low/high range for
        others), prices input, cache reads and expected output at the current catalog price (Batch API
        rates with batch=true; long-context prices when the prompt passes the model's threshold), and
        says whether it fits the context window. Comparisons are sorted cheapest first.
        """
        return estimate_prompt(
            app.catalog,
            model=model,
            text=text,
            messages=[m.to_message() for m in messages] if messages is not None else None,
            expected_output_tokens=expected_output_tokens,
            cached_input_tokens=cached_input_tokens,
            batch=batch,
            compare_models=compare_models,
            max_input_bytes=app.settings.max_input_bytes,
            exact_counter=_exact_counter(app, text, messages) if exact_count else None,
        )

    @mcp.tool(annotations=READ_ONLY)
    @guard
    def lookup_pricing(
        model: Annotated[str, Field(description="model id in any accepted form (alias, snapshot, provider/...)")],
        on_date: Annotated[
            date | None, Field(description="show the prices in force on this UTC date (default: today)")
        ] = None,
    ) -> ModelPricing:
        """A model's prices per million tokens (input, cached input, cache writes, output, batch, priority,
        long-context), limits, deprecation, source, and its price history."""
        entry = app.catalog.get(model)
        return model_pricing(entry, period=entry.period_at(on_date) if on_date else None, history=True)

    @mcp.resource(
        "pricing://models",
        name="models",
        description="Every model in the catalog with its current prices (USD per million tokens).",
        mime_type="application/json",
    )
    def all_models() -> list[dict[str, object]]:
        return [_dump(model_pricing(entry)) for entry in app.catalog.models]

    @mcp.resource(
        "pricing://models/{+model}",
        name="model",
        description="One model's prices and price history; any accepted alias resolves (e.g. openai/gpt-4o).",
        mime_type="application/json",
    )
    def one_model(model: str) -> dict[str, object]:
        try:
            entry = app.catalog.get(model)
        except CosthawkError as exc:
            raise ResourceNotFoundError(str(exc)) from exc
        return _dump(model_pricing(entry, history=True))

    @mcp.resource(
        "pricing://providers/{provider}",
        name="provider",
        description="Every model of one provider (openai, anthropic, google, mistral, deepseek, xai).",
        mime_type="application/json",
    )
    def provider_models(provider: str) -> list[dict[str, object]]:
        try:
            canonical = normalize_provider(provider)
        except CosthawkError as exc:
            raise ResourceNotFoundError(str(exc)) from exc
        return [_dump(model_pricing(entry)) for entry in app.catalog.by_provider(canonical)]


def _exact_counter(app: App, text: str | None, messages: list[ChatMessage] | None) -> ExactCounter:
    """Counts with the provider's endpoint where one exists (Claude, Gemini), else None (approximate)."""
    from costhawk_mcp.tokens_remote import SUPPORTED, exact_count

    prompt = [m.to_message() for m in messages] if messages is not None else None

    def counter(entry: ModelEntry) -> TokenCount | None:
        if entry.provider not in SUPPORTED:
            return None
        return exact_count(entry, app.settings, text=text, messages=prompt)

    return counter


def _dump(view: ModelPricing) -> dict[str, object]:
    return view.model_dump(mode="json")
