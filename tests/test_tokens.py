"""Offline token counting against tiktoken's own encoding definitions, approximations, and failure modes."""

from __future__ import annotations

import gzip
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tiktoken
import tiktoken_ext.openai_public
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from costhawk_mcp import datafiles, tokens
from costhawk_mcp.errors import InputTooLarge, InvalidArgument, TokenizerError
from costhawk_mcp.pricing.catalog import ModelEntry, load_catalog
from costhawk_mcp.tokens import Message, count_messages, count_ordinary, count_text

MAX = 20 * 1024 * 1024


def entry(model: str, provider: str, encoding: str | None = None) -> ModelEntry:
    """A catalog entry as the counter sees it (prices do not matter here)."""
    return ModelEntry.model_validate(
        {
            "model": model,
            "provider": provider,
            "encoding": encoding,
            "periods": [{"standard": {"input": "1", "output": "1"}}],
        }
    )


GPT_O200K = entry("test-gpt", "openai", "o200k_base")
GPT_CL100K = entry("test-legacy", "openai", "cl100k_base")
GPT_UNMAPPED = entry("test-gpt-next", "openai")
CLAUDE = entry("test-claude", "anthropic")
GEMINI = entry("test-gemini", "google")


@pytest.fixture(scope="module")
def reference() -> Iterator[dict[str, tiktoken.Encoding]]:
    """tiktoken's OWN o200k_base/cl100k_base constructors, fed our shipped ranks instead of a download.

    Only the BPE ranks come from us; the regex and special tokens come from tiktoken_ext, so equal
    counts also prove the copies in tokens.py are tiktoken's.
    """
    with pytest.MonkeyPatch.context() as mp:

        def load(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
            name = url.rsplit("/", 1)[1].removesuffix(".tiktoken")
            return tokens.mergeable_ranks(name)

        mp.setattr(tiktoken_ext.openai_public, "load_tiktoken_bpe", load)
        yield {
            "o200k_base": tiktoken.Encoding(**tiktoken_ext.openai_public.o200k_base()),
            "cl100k_base": tiktoken.Encoding(**tiktoken_ext.openai_public.cl100k_base()),
        }


CODE = '''\
def fib(n: int) -> int:
    """Return the n-th Fibonacci number."""
    a, b = 0, 1
    for _ in range(n):\t# tabs too
        a, b = b, a + b
    return a

const x = {a: [1, 2, 3], "b": null}; // JS
#include <stdio.h>
int main(void) { printf("%d\\n", 42); return 0; }
'''

VARIED = {
    "empty": "",
    "prose": "The quick brown fox jumps over the lazy dog. It's 9:45 a.m.; they'll've left by then, DON'T wait.",
    "code": CODE,
    "cjk": "東京は日本の首都です。北京是中国的首都。서울은 한국의 수도입니다. カタカナとひらがな、漢字。",
    "emoji": "ship it 🚀🔥 👩‍👩‍👧‍👦 family, flags 🇯🇵🇫🇷, skin tones 👍🏽 and ✔️ marks",
    "whitespace runs": "a     b\n\n\n   \t\t c   \r\n  \u00a0\u2003 end   \n\n",
    "special-token strings": "<|endoftext|> then <|endofprompt|> and <|fim_prefix|>x<|fim_suffix|>y<|fim_middle|>",
    "numbers": "1234567 3.14159 1,000,000 0x1F 2026-11-27 ½ ² Ⅻ",
    "scripts": "नमस्ते दुनिया — مرحبا بالعالم — สวัสดีชาวโลก — Привет, мир — Γειά σου Κόσμε",
    "combining marks": "e\u0301te\u0301 cafe\u0301 n\u0303 Z\u0335\u0321a\u0337lgo",
    "long line": "word " * 3000,
}


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_shipped_encodings_are_defined_exactly_like_tiktokens_own(
    name: str, reference: dict[str, tiktoken.Encoding]
) -> None:
    ours, theirs = tokens.get_encoding(name), reference[name]
    assert ours._pat_str == theirs._pat_str
    assert ours._special_tokens == theirs._special_tokens
    assert ours.n_vocab == theirs.n_vocab


@pytest.mark.parametrize("label", sorted(VARIED))
@pytest.mark.parametrize(("model", "encoding"), [(GPT_O200K, "o200k_base"), (GPT_CL100K, "cl100k_base")])
def test_exact_counts_equal_tiktoken_on_varied_text(
    label: str, model: ModelEntry, encoding: str, reference: dict[str, tiktoken.Encoding]
) -> None:
    text = VARIED[label]
    expected = len(reference[encoding].encode_ordinary(text))
    counted = count_text(text, model, max_bytes=MAX)
    assert (counted.tokens, counted.low, counted.high) == (expected, expected, expected)
    assert counted.method == "exact"
    assert counted.encoding == encoding
    assert f"tiktoken {encoding}" in counted.detail


def test_special_token_strings_are_counted_as_plain_text(reference: dict[str, tiktoken.Encoding]) -> None:
    # A prompt that quotes "<|endoftext|>" is text, not a control token: o200k reads it as 7 ordinary
    # tokens ("<", "|", "end", "of", "text", "|", ">"); encoded as the special token it would be 1.
    assert count_text("<|endoftext|>", GPT_O200K, max_bytes=MAX).tokens == 7
    assert reference["o200k_base"].encode("<|endoftext|>", allowed_special="all") == [199999]


def test_text_past_the_parallel_threshold_counts_exactly(reference: dict[str, tiktoken.Encoding]) -> None:
    # Above _PARALLEL_MIN_CHARS (production value) the count runs in pieces on a thread pool.
    text = (VARIED["prose"] + "\n" + CODE + VARIED["cjk"] + " " + VARIED["emoji"] + "\n") * 2500
    assert len(text) > tokens._PARALLEL_MIN_CHARS
    assert count_text(text, GPT_O200K, max_bytes=MAX).tokens == len(reference["o200k_base"].encode_ordinary(text))


# --- the chat recipe ----------------------------------------------------------------------------


def test_chat_recipe_adds_three_per_message_one_per_name_and_three_for_the_reply() -> None:
    messages = [
        Message("system", "You are terse."),  # "You", " are", " terse", "." → 4 tokens (o200k)
        Message("user", "hello world", name="bob"),  # "hello", " world" → 2; name "bob" → 1
        Message("assistant", "Hi"),  # 1
    ]
    # per message 3 + role (system 1, user 1, assistant 1) + content (4, 2, 1); a name adds 1 + its
    # own 1 token; the reply is primed with 3:
    #   (3+1+4) + (3+1+2 + 1+1) + (3+1+1) + 3 = 8 + 8 + 5 + 3 = 24
    counted = count_messages(messages, GPT_O200K, max_bytes=MAX)
    assert (counted.tokens, counted.method) == (24, "exact")
    assert counted.detail.endswith("OpenAI chat recipe")
    # Without the name: 24 - 2 = 22.
    messages[1] = Message("user", "hello world")
    assert count_messages(messages, GPT_O200K, max_bytes=MAX).tokens == 22


def test_chat_recipe_uses_the_models_own_encoding(reference: dict[str, tiktoken.Encoding]) -> None:
    content = VARIED["cjk"]
    cl100k = reference["cl100k_base"]
    expected = 3 + len(cl100k.encode_ordinary("user")) + len(cl100k.encode_ordinary(content)) + 3
    assert count_messages([Message("user", content)], GPT_CL100K, max_bytes=MAX).tokens == expected
    assert expected != 3 + 1 + len(reference["o200k_base"].encode_ordinary(content)) + 3


# --- the parallel split -------------------------------------------------------------------------

# Letters and spaces dominate so that safe cut points exist; the rest are the awkward cases:
# contractions, digits, punctuation (also right before a newline), combining marks, CJK, emoji,
# no-break space, numeric symbols that are not \d, titlecase and modifier letters, special-token
# strings, CRLF.
ALPHABET = st.sampled_from(
    [
        *"abcdefghijXYZ",
        *(" ", " ", " ", "'s", "'t", "\n", "\t", "  ", "1", "23", ".", ",", "!", "/", "-", "_", ".\n", "!/\n\n"),
        *("é", "e\u0301", "東", "京", "한", "🚀", "👍🏽", "\u00a0", "²", "½", "Ⅻ", "<|endoftext|>", "\r\n", "ǅ", "ʰ"),
    ]
)
TEXTS = st.lists(ALPHABET, min_size=0, max_size=400).map("".join)


@pytest.fixture
def force_parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Take the threaded path for any text, even on a one-core machine."""
    monkeypatch.setattr(tokens, "_PARALLEL_MIN_CHARS", 1)
    monkeypatch.setattr(tokens.os, "cpu_count", lambda: 3)


@pytest.mark.usefixtures("force_parallel")
@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXTS)
@example(text="a b")  # shorter than the number of pieces asked for
@example(text="I'm here. They're there don't stop")
@example(text="東京 は 한국 ½ word ² Ⅻ x")
def test_parallel_count_equals_the_unsplit_count(text: str) -> None:
    whole = len(tokens.get_encoding("o200k_base").encode_ordinary(text))
    assert count_ordinary(text, "o200k_base") == whole
    assert count_ordinary(text, "cl100k_base") == len(tokens.get_encoding("cl100k_base").encode_ordinary(text))


@hypothesis_settings(max_examples=200, deadline=None)
@given(text=TEXTS, parts=st.integers(min_value=1, max_value=64))
def test_split_pieces_rejoin_to_the_text_and_count_the_same(text: str, parts: int) -> None:
    pieces = tokens._split(text, parts)
    assert "".join(pieces) == text
    for name in tokens.ENCODINGS:
        encoding = tokens.get_encoding(name)
        assert sum(len(encoding.encode_ordinary(piece)) for piece in pieces) == len(encoding.encode_ordinary(text))


def test_split_cuts_large_text_into_many_pieces() -> None:
    text = "alpha beta gamma delta " * 10_000
    pieces = tokens._split(text, 8)
    assert 7 <= len(pieces) <= 9
    assert all(piece.startswith(" ") for piece in pieces[1:])


# --- approximations -----------------------------------------------------------------------------

PROSE_1000 = "hello" + " hello" * 999  # 1000 o200k tokens: every " hello" is one token


def test_claude_prose_is_the_o200k_count_times_the_anthropic_prose_ratio() -> None:
    assert count_ordinary(PROSE_1000, "o200k_base") == 1000
    counted = count_text(PROSE_1000, CLAUDE, max_bytes=MAX)
    # prose ratio 1.18 (band 1.10–1.30): 1000 × 1.18 = 1180, low 1100, high 1300
    assert (counted.tokens, counted.low, counted.high) == (1180, 1100, 1300)
    assert counted.method == "approximate"
    assert counted.encoding == "o200k_base"
    assert "anthropic ratio" in counted.detail and "no public tokenizer" in counted.detail


def test_approximations_weigh_each_content_class_with_its_own_ratio() -> None:
    code_line = "    return {'a': x[0]};\n"  # a code line (indent + symbols)
    cjk_line = "東京は日本の首都です。\n"
    assert tokens.classify_line(code_line) == "code" and tokens.classify_line(cjk_line) == "cjk"
    code_tokens = count_ordinary(code_line * 10, "o200k_base")
    cjk_tokens = count_ordinary(cjk_line * 10, "o200k_base")
    counted = count_text(code_line * 10 + cjk_line * 10, CLAUDE, max_bytes=MAX)
    # anthropic: code 1.35 (1.20–1.60), CJK 1.60 (1.30–2.00)
    assert counted.tokens == round(code_tokens * 1.35 + cjk_tokens * 1.60)
    assert counted.low == int(code_tokens * 1.20 + cjk_tokens * 1.30)
    assert counted.high == -int(-(code_tokens * 1.60 + cjk_tokens * 2.00) // 1)


@pytest.mark.parametrize("label", sorted(VARIED))
@pytest.mark.parametrize("model", [CLAUDE, GEMINI, GPT_UNMAPPED], ids=lambda m: m.model)
def test_approximate_counts_hold_their_own_band(label: str, model: ModelEntry) -> None:
    counted = count_text(VARIED[label], model, max_bytes=MAX)
    assert counted.method == "approximate"
    assert counted.low <= counted.tokens <= counted.high
    if VARIED[label]:
        assert counted.low < counted.high


def test_openai_models_without_a_tiktoken_mapping_say_o200k_is_assumed() -> None:
    counted = count_text(PROSE_1000, GPT_UNMAPPED, max_bytes=MAX)
    # openai fallback ratio 1.00 (0.97–1.05)
    assert (counted.tokens, counted.low, counted.high) == (1000, 970, 1050)
    assert counted.method == "approximate" and "o200k_base assumed" in counted.detail
    assert count_text(PROSE_1000, None, max_bytes=MAX).detail == counted.detail


def test_approximate_chat_counts_keep_the_recipe_overhead_exact() -> None:
    counted = count_messages([Message("user", PROSE_1000)], CLAUDE, max_bytes=MAX)
    # overhead 3 + 3 = 6; role and content are prose, counted together as "userhello hello ..." =
    # "user" + 1000 × "hello" = 1001 o200k tokens: 6 + 1001 × 1.18 = 1187.18 → 1187
    assert counted.tokens == round(6 + 1001 * 1.18)
    assert counted.low == int(6 + 1001 * 1.10) and counted.high == -int(-(6 + 1001 * 1.30) // 1)
    assert counted.method == "approximate" and counted.detail.endswith("OpenAI chat recipe")


# --- offline, limits, corrupt files --------------------------------------------------------------


@pytest.fixture
def fresh_encodings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget the process-wide encoding cache so the next count loads the files again."""
    monkeypatch.setattr(tokens, "_loaded", {})


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Any attempt to connect beyond loopback fails loudly (and is recorded)."""
    attempts: list[Any] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            attempts.append(address)
            raise OSError(f"network disabled in this test: {address}")

    def connect(self: socket.socket, address: Any) -> None:
        check(self, address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(self, address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    return attempts


@pytest.mark.usefixtures("fresh_encodings")
def test_counting_never_downloads(no_network: list[Any], tmp_path: Path) -> None:
    cache = tmp_path / "empty-tiktoken-cache"  # conftest points TIKTOKEN_CACHE_DIR here
    assert cache.is_dir() and not any(cache.iterdir())
    assert count_text(PROSE_1000, GPT_O200K, max_bytes=MAX).tokens == 1000
    assert count_text(PROSE_1000, GPT_CL100K, max_bytes=MAX).tokens == 1000
    assert count_text(PROSE_1000, CLAUDE, max_bytes=MAX).tokens == 1180
    assert set(tokens._loaded) == {"o200k_base", "cl100k_base"}
    assert no_network == []
    assert not any(cache.iterdir())
    with pytest.raises(OSError, match="network disabled"):  # the guard itself works
        socket.create_connection(("192.0.2.1", 443), timeout=1)


@pytest.mark.usefixtures("fresh_encodings")
def test_a_truncated_encoding_file_is_a_clear_tokenizer_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = tokens.data_file("tiktoken", "o200k_base.tiktoken.gz").read_bytes()
    bad = tmp_path / "o200k_base.tiktoken.gz"
    bad.write_bytes(real[: len(real) // 2])
    monkeypatch.setattr(tokens, "data_file", lambda *parts: bad)
    with pytest.raises(TokenizerError, match=r"cannot read the o200k_base tokenizer file.*reinstall costhawk-mcp"):
        count_text("hello", GPT_O200K, max_bytes=MAX)


@pytest.mark.usefixtures("fresh_encodings")
def test_a_garbled_encoding_file_is_a_clear_tokenizer_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = bytearray(tokens.data_file("tiktoken", "o200k_base.tiktoken.gz").read_bytes())
    for i in range(1000, len(real) - 1000, 997):  # flip bytes inside the deflate stream, header intact
        real[i] ^= 0x5A
    bad = tmp_path / "o200k_base.tiktoken.gz"
    bad.write_bytes(bytes(real))
    monkeypatch.setattr(tokens, "data_file", lambda *parts: bad)
    with pytest.raises(TokenizerError, match=r"cannot read the o200k_base tokenizer file.*reinstall costhawk-mcp"):
        count_text("hello", GPT_O200K, max_bytes=MAX)


@pytest.mark.usefixtures("fresh_encodings")
def test_an_encoding_file_with_other_content_fails_its_checksum(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bad = tmp_path / "o200k_base.tiktoken.gz"
    bad.write_bytes(gzip.compress(b"aGVsbG8= 0\n"))
    monkeypatch.setattr(tokens, "data_file", lambda *parts: bad)
    with pytest.raises(
        TokenizerError, match=r"the o200k_base tokenizer file is corrupt \(sha256 .*expected 446a9538cb6c"
    ):
        count_text("hello", GPT_O200K, max_bytes=MAX)
    assert "o200k_base" not in tokens._loaded  # nothing half-loaded is cached


@pytest.mark.usefixtures("fresh_encodings")
def test_a_missing_encoding_file_is_a_tokenizer_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(datafiles, "_SOURCE_DATA", tmp_path / "nowhere")
    with pytest.raises(TokenizerError, match=r"tiktoken/cl100k_base\.tiktoken\.gz is missing.*reinstall"):
        count_text("hello", GPT_CL100K, max_bytes=MAX)


def test_text_above_the_byte_limit_names_the_field_and_the_limit() -> None:
    # 334 CJK characters are 1002 UTF-8 bytes: the limit is on bytes, not characters.
    with pytest.raises(InputTooLarge, match=r"^text: 1,002 bytes is above the limit of 1,000 bytes"):
        count_text("東" * 334, GPT_O200K, max_bytes=1000)
    assert count_text("東" * 333, GPT_O200K, max_bytes=1000).tokens > 0  # 999 bytes is fine


def test_messages_above_the_byte_limit_count_every_string_they_carry() -> None:
    with pytest.raises(InputTooLarge, match=r"^messages: .* above the limit of 1,000 bytes"):
        count_messages([Message("user", "x" * 600), Message("user", "y" * 600)], GPT_O200K, max_bytes=1000)
    # a participant name is counted (and tokenized) too, so it is part of the size
    with pytest.raises(InputTooLarge, match=r"^messages: "):
        count_messages([Message("user", "hi", name="n" * 2000)], GPT_O200K, max_bytes=1000)


def test_an_unknown_encoding_name_is_an_invalid_argument() -> None:
    with pytest.raises(
        InvalidArgument, match="unknown encoding 'p50k_base'; shipped: o200k_base, cl100k_base"
    ) as raised:
        tokens.mergeable_ranks("p50k_base")
    assert raised.value.field == "encoding"


def test_ratio_bands_contain_their_expected_value() -> None:
    for provider, by_class in tokens.APPROX_RATIOS.items():
        for kind, ratio in by_class.items():
            assert 0 < ratio.low <= ratio.expected <= ratio.high, (provider, kind)


def test_real_catalog_openai_models_count_exactly_with_tiktokens_own_mapping() -> None:
    """Every OpenAI model that tiktoken maps to a shipped encoding is counted exactly with that encoding.

    A fine-tune is checked against its base model: tiktoken maps by prefix, and its "ft:gpt-4" prefix
    wrongly catches ft:gpt-4.1-* (GPT-4.1 is o200k_base).
    """
    checked = 0
    for model in load_catalog().models:
        if model.provider != "openai":
            continue
        base = model.model[3:].split(":", 1)[0] if model.model.startswith("ft:") else model.model
        try:
            expected = tiktoken.encoding_name_for_model(base)
        except KeyError:
            continue
        if expected not in tokens.ENCODINGS:
            continue
        assert model.encoding == expected, model.model
        counted = count_text("hello world", model, max_bytes=MAX)
        assert (counted.method, counted.encoding, counted.tokens) == ("exact", expected, 2), model.model
        checked += 1
    assert checked >= 50  # gpt-4o, o3, gpt-4.1, gpt-3.5-turbo, gpt-4 ... and their snapshots
