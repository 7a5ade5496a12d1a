"""Offline token counting: exact with tiktoken where the tokenizer is public, stated estimates elsewhere.

The BPE files for `o200k_base` and `cl100k_base` ship inside the package, gzipped, and are checked
against tiktoken's own expected sha256 before use. Nothing here ever touches the network or
tiktoken's download cache. Encodings load on first use (about a second for o200k), once per process.

Models whose tokenizer is not public (Claude, Gemini, Mistral, DeepSeek, Grok, and OpenAI models
that tiktoken does not map) get an *approximation*: the text's o200k count, split by content class
(prose, code, CJK), times a per-provider ratio with a low/high band. Every result says which.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import re
import threading
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from costhawk_mcp.datafiles import data_file
from costhawk_mcp.errors import CatalogError, InputTooLarge, InvalidArgument, TokenizerError

if TYPE_CHECKING:
    import tiktoken

    from costhawk_mcp.pricing.catalog import ModelEntry

# The regexes, special tokens and expected hashes are tiktoken's own (tiktoken_ext/openai_public.py);
# tests check that encodings built here tokenize exactly like tiktoken's constructors.
_ENDOFTEXT = "<|endoftext|>"
_ENDOFPROMPT = "<|endofprompt|>"
_SPECS: dict[str, tuple[str, str, dict[str, int]]] = {
    "o200k_base": (
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "|".join(
            [
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""\p{N}{1,3}""",
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                r"""\s*[\r\n]+""",
                r"""\s+(?!\S)""",
                r"""\s+""",
            ]
        ),
        {_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
    ),
    "cl100k_base": (
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
        {
            _ENDOFTEXT: 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            _ENDOFPROMPT: 100276,
        },
    ),
}
ENCODINGS: tuple[str, ...] = tuple(_SPECS)

_lock = threading.Lock()
_loaded: dict[str, tiktoken.Encoding] = {}


def mergeable_ranks(name: str) -> dict[bytes, int]:
    """The BPE ranks of a shipped encoding, verified against tiktoken's expected sha256."""
    if name not in _SPECS:
        raise InvalidArgument("encoding", f"unknown encoding {name!r}; shipped: {', '.join(_SPECS)}")
    expected = _SPECS[name][0]
    try:
        raw = gzip.decompress(data_file("tiktoken", f"{name}.tiktoken.gz").read_bytes())
    except (OSError, EOFError, zlib.error) as exc:  # zlib.error: a damaged deflate stream
        raise TokenizerError(f"cannot read the {name} tokenizer file: {exc}; reinstall costhawk-mcp") from exc
    except CatalogError as exc:  # the file is missing from the installation
        raise TokenizerError(str(exc)) from exc
    actual = hashlib.sha256(raw).hexdigest()
    if actual != expected:
        raise TokenizerError(
            f"the {name} tokenizer file is corrupt (sha256 {actual[:12]}…, expected {expected[:12]}…); "
            "reinstall costhawk-mcp"
        )
    ranks: dict[bytes, int] = {}
    for line in raw.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def get_encoding(name: str) -> tiktoken.Encoding:
    """A shipped tiktoken encoding, loaded once per process (thread-safe; never downloads)."""
    encoding = _loaded.get(name)
    if encoding is not None:
        return encoding
    with _lock:
        encoding = _loaded.get(name)
        if encoding is None:
            import tiktoken

            _, pattern, special = _SPECS[name]
            encoding = tiktoken.Encoding(
                name=name, pat_str=pattern, mergeable_ranks=mergeable_ranks(name), special_tokens=special
            )
            _loaded[name] = encoding
    return encoding


# Large texts are counted in parallel pieces cut where the tokenizers' pre-split would cut anyway:
# between a letter and a single space that starts the next word. Both patterns end a letter run at a
# space and start a new piece with " word", so the pieces tokenize exactly like the whole.
_PARALLEL_MIN_CHARS = 512 * 1024
_CUT = re.compile(r"(?<=[^\W\d_]) (?=[^\W\d_])")


def count_ordinary(text: str, encoding: str) -> int:
    """Exact number of tokens of `text` in `encoding`, special-token strings counted as plain text."""
    enc = get_encoding(encoding)
    workers = os.cpu_count() or 1
    if len(text) < _PARALLEL_MIN_CHARS or workers < 2:
        return len(enc.encode_ordinary(text))
    pieces = _split(text, max(workers * 4, 8))
    with ThreadPoolExecutor(workers) as pool:
        return sum(pool.map(lambda piece: len(enc.encode_ordinary(piece)), pieces))


def _split(text: str, parts: int) -> list[str]:
    """Cut `text` into about `parts` pieces at safe boundaries (or not at all if none exist)."""
    step = max(1, len(text) // parts)  # a text shorter than `parts` must not make a zero step
    pieces: list[str] = []
    start = 0
    for target in range(step, len(text), step):
        if target <= start:
            continue
        match = _CUT.search(text, target, min(len(text), target + 4096))
        if match is None:
            continue
        pieces.append(text[start : match.start()])
        start = match.start()
    pieces.append(text[start:])
    return pieces


Method = Literal["exact", "approximate"]
ContentClass = Literal["prose", "code", "cjk"]


@dataclass(frozen=True)
class Ratio:
    """Estimated tokens of a provider's tokenizer per o200k token, with a plausible band."""

    expected: float
    low: float
    high: float


# Per provider and content class. Claude's figures follow Anthropic's own guidance that tiktoken
# undercounts Claude by about 15-20 % on English prose and by much more on code and non-English
# text; the others are rough, deliberately wide bands (their tokenizers are not shipped here).
# The README repeats this table; when a model's provider has an exact count endpoint, use it.
APPROX_RATIOS: dict[str, dict[ContentClass, Ratio]] = {
    "anthropic": {
        "prose": Ratio(1.18, 1.10, 1.30),
        "code": Ratio(1.35, 1.20, 1.60),
        "cjk": Ratio(1.60, 1.30, 2.00),
    },
    "google": {
        "prose": Ratio(1.00, 0.90, 1.15),
        "code": Ratio(1.10, 0.95, 1.30),
        "cjk": Ratio(1.00, 0.80, 1.30),
    },
    "mistral": {
        "prose": Ratio(1.08, 0.95, 1.25),
        "code": Ratio(1.10, 0.95, 1.30),
        "cjk": Ratio(1.30, 1.00, 1.70),
    },
    "deepseek": {
        "prose": Ratio(1.05, 0.95, 1.20),
        "code": Ratio(1.05, 0.95, 1.25),
        "cjk": Ratio(0.95, 0.80, 1.20),
    },
    "xai": {
        "prose": Ratio(1.00, 0.90, 1.15),
        "code": Ratio(1.05, 0.90, 1.25),
        "cjk": Ratio(1.10, 0.85, 1.40),
    },
    # OpenAI models tiktoken does not map yet: assume o200k_base, with a narrow band.
    "openai": {
        "prose": Ratio(1.00, 0.97, 1.05),
        "code": Ratio(1.00, 0.97, 1.05),
        "cjk": Ratio(1.00, 0.95, 1.10),
    },
}

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f]")
_CODE_HINT = re.compile(r"[{}();=<>\[\]]|^\s{2,}\S|^\s*(?:def|class|import|return|const|let|var|fn|pub|#include)\b")


def classify_line(line: str) -> ContentClass:
    """Which content class a line of text belongs to, for the approximation ratios."""
    if not line.strip():
        return "prose"
    cjk = len(_CJK.findall(line))
    if cjk * 4 >= len(line.strip()):
        return "cjk"
    symbols = sum(1 for ch in line if ch in "{}()[];=<>_/\\*&|:#$\"'`")
    if _CODE_HINT.search(line) and symbols * 12 >= len(line):
        return "code"
    return "prose"


@dataclass(frozen=True)
class TokenCount:
    """A count and how it was obtained. `low`/`high` equal `tokens` when the count is exact."""

    tokens: int
    method: Method
    encoding: str
    detail: str
    low: int
    high: int


def _limit(size: int, max_bytes: int, field: str) -> None:
    if size > max_bytes:
        raise InputTooLarge(
            f"{field}: {size:,} bytes is above the limit of {max_bytes:,} bytes "
            "(set COSTHAWK_MAX_INPUT_BYTES to change it)"
        )


def _plan(entry: ModelEntry | None) -> tuple[str, dict[ContentClass, Ratio] | None, str]:
    """Encoding to count with, the ratios to apply (None = exact) and a description."""
    if entry is not None and entry.encoding in _SPECS:
        return entry.encoding, None, f"tiktoken {entry.encoding} (the model's own tokenizer)"
    provider = entry.provider if entry is not None else "openai"
    ratios = APPROX_RATIOS.get(provider, APPROX_RATIOS["google"])
    if provider == "openai":
        why = "o200k_base assumed: tiktoken does not map this model"
    else:
        why = f"o200k_base count × {provider} ratio per content class (prose/code/CJK); no public tokenizer"
    return "o200k_base", ratios, why


def count_text(text: str, entry: ModelEntry | None, *, max_bytes: int, field: str = "text") -> TokenCount:
    """Tokens of a plain text for a model: exact where possible, else a stated approximation."""
    _limit(len(text.encode("utf-8", errors="surrogatepass")), max_bytes, field)
    encoding, ratios, detail = _plan(entry)
    if ratios is None:
        tokens = count_ordinary(text, encoding)
        return TokenCount(tokens, "exact", encoding, detail, tokens, tokens)
    return _approximate([text], encoding, ratios, detail, overhead=0)


@dataclass(frozen=True)
class Message:
    """One chat message as the counting recipe sees it."""

    role: str
    content: str
    name: str | None = None


# OpenAI's published recipe (openai-cookbook, "How to count tokens with tiktoken"):
# every message costs 3 tokens plus its role and content, a name adds 1 plus its own tokens,
# and every reply is primed with 3 more.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3


def count_messages(
    messages: Sequence[Message], entry: ModelEntry | None, *, max_bytes: int, field: str = "messages"
) -> TokenCount:
    """Tokens of a chat prompt following OpenAI's counting recipe."""
    size = sum(
        len(m.content.encode("utf-8", errors="surrogatepass"))
        + len(m.role)
        + len((m.name or "").encode("utf-8", errors="surrogatepass"))
        for m in messages
    )
    _limit(size, max_bytes, field)
    overhead = REPLY_PRIMING + len(messages) * TOKENS_PER_MESSAGE
    overhead += sum(TOKENS_PER_NAME for m in messages if m.name)
    texts: list[str] = []
    for m in messages:
        texts.append(m.role)
        texts.append(m.content)
        if m.name:
            texts.append(m.name)
    encoding, ratios, detail = _plan(entry)
    if ratios is None:
        tokens = overhead + sum(count_ordinary(t, encoding) for t in texts)
        return TokenCount(tokens, "exact", encoding, f"{detail}; OpenAI chat recipe", tokens, tokens)
    return _approximate(texts, encoding, ratios, f"{detail}; OpenAI chat recipe", overhead=overhead)


def _approximate(
    texts: Sequence[str], encoding: str, ratios: dict[ContentClass, Ratio], detail: str, *, overhead: int
) -> TokenCount:
    by_class: dict[ContentClass, list[str]] = {"prose": [], "code": [], "cjk": []}
    for text in texts:
        for line in text.splitlines(keepends=True) or [text]:
            by_class[classify_line(line)].append(line)
    expected = low = high = float(overhead)
    for kind, lines in by_class.items():
        if not lines:
            continue
        base = count_ordinary("".join(lines), encoding)
        ratio = ratios[kind]
        expected += base * ratio.expected
        low += base * ratio.low
        high += base * ratio.high
    return TokenCount(round(expected), "approximate", encoding, detail, int(low), -int(-high // 1))
