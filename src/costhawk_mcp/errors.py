"""The project's error tree.

Domain code raises these; the MCP layer turns every `CosthawkError` into a `ToolError` whose text
reaches the model, and the CLI prints them without a traceback.

    CosthawkError
    ├── InvalidArgument          a caller's value is wrong: names the field and what is allowed
    │   └── UnknownModel         a model id not in the catalog: lists close matches
    ├── InputTooLarge            text beyond the configured size limit
    ├── CatalogError             the pricing catalog is missing, corrupt or fails validation
    ├── TokenizerError           an encoding file is missing or fails its checksum
    ├── StoreError               the database cannot be opened or used
    │   └── StoreBusy            another process held the database lock for too long
    └── ProviderError            a provider admin API failed
        └── ProviderAuthError    401/403: names the environment variable holding the bad key
"""

from __future__ import annotations

from collections.abc import Sequence


class CosthawkError(Exception):
    """Base of every error costhawk raises on purpose."""


class InvalidArgument(CosthawkError):
    """A caller-supplied value is not acceptable."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class UnknownModel(InvalidArgument):
    """A model id that the pricing catalog does not know."""

    def __init__(self, model: str, suggestions: Sequence[str], field: str = "model") -> None:
        self.model = model
        self.suggestions = list(suggestions)
        hint = (
            f"; close matches: {', '.join(self.suggestions)}"
            if self.suggestions
            else "; every known model is in the pricing://models resource (or `costhawk-mcp pricing list`)"
        )
        super().__init__(field, f"unknown model {model!r}{hint}")


class InputTooLarge(CosthawkError):
    """Input text above the configured limit (COSTHAWK_MAX_INPUT_BYTES)."""


class CatalogError(CosthawkError):
    """The pricing catalog cannot be loaded."""


class TokenizerError(CosthawkError):
    """A tokenizer file is missing or corrupt."""


class StoreError(CosthawkError):
    """The usage database cannot be opened or queried."""


class StoreBusy(StoreError):
    """Another process kept the database locked longer than the lock timeout."""


class ProviderError(CosthawkError):
    """A provider admin API call failed after retries."""


class ProviderAuthError(ProviderError):
    """The provider rejected the admin key (HTTP 401/403)."""
