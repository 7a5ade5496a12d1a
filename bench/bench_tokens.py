"""Token-counting throughput of estimate_prompt's counter against bare tiktoken, on the same texts.

`costhawk_mcp.tokens.count_text` on an OpenAI model entry (gpt-4o, o200k_base) versus
`len(encoding.encode_ordinary(text))` on the very same tiktoken Encoding object (built from the
shipped ranks), on deterministic 1 MB and 10 MB mixes of prose, code and CJK. Runs alternate
between the two; medians are compared. The 1 MB text gets three times the runs: each takes a
tenth of a second, so one scheduler hiccup on a shared machine would swing a short median.
Goal: throughput ratio ours / bare >= 0.9.

    python bench/bench_tokens.py [--runs 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from costhawk_mcp import tokens
from costhawk_mcp.pricing.catalog import load_catalog

GOAL = 0.9
SIZES_MB = (1, 10)

PROSE = (
    "the cost of a prompt depends on its tokens and the model price per million tokens while cached "
    "input is cheaper and batch jobs pay half so teams that watch their spend can move work around"
)
WORDS = PROSE.split()
CODE_LINES = (
    "def estimate(model: str, tokens: int) -> Decimal:",
    "    return Decimal(tokens) * PRICES[model] / MILLION",
    "for (let i = 0; i < rows.length; i++) { total += rows[i].cost; }",
    "    if cached > input_tokens: raise ValueError('cached > input')",
    "SELECT model, sum(cost_usd) FROM requests GROUP BY model ORDER BY 2 DESC;",
    "    }",
)
CJK_SENTENCES = (
    "東京は日本の首都です。",
    "这个模型的价格是每百万个令牌两美元。",
    "서울은 한국의 수도입니다.",
    "キャッシュされた入力はより安いです。",
)


def mixed_text(megabytes: int, seed: int = 20261127) -> str:
    """About `megabytes` MB (UTF-8) of prose, code and CJK lines, the same on every run."""
    rng = random.Random(seed)
    target = megabytes * 1_000_000
    lines: list[str] = []
    size = 0
    while size < target:
        kind = rng.random()
        if kind < 0.6:
            line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30))).capitalize() + "."
        elif kind < 0.85:
            line = rng.choice(CODE_LINES)
        else:
            line = "".join(rng.choice(CJK_SENTENCES) for _ in range(rng.randint(1, 4)))
        lines.append(line)
        size += len(line.encode()) + 1
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="repetitions per counter on 10 MB (default 7)")
    args = parser.parse_args()
    entry = load_catalog().get("gpt-4o")
    assert entry.encoding == "o200k_base", entry.encoding
    encoding = tokens.get_encoding("o200k_base")  # load once, outside the timings

    def ours(text: str) -> int:
        return tokens.count_text(text, entry, max_bytes=len(text.encode()) + 1).tokens

    def bare(text: str) -> int:
        return len(encoding.encode_ordinary(text))

    missed = False
    print("token counting throughput, o200k_base, interleaved runs, medians:")
    for megabytes in SIZES_MB:
        text = mixed_text(megabytes)
        size_mb = len(text.encode()) / 1e6
        assert ours(text) == bare(text), "the counts differ"
        times: dict[str, list[float]] = {"ours": [], "bare": []}
        runs = args.runs * 3 if megabytes == 1 else args.runs
        for i in range(runs):
            for label in ("ours", "bare") if i % 2 == 0 else ("bare", "ours"):
                count = ours if label == "ours" else bare
                start = time.perf_counter()
                count(text)
                times[label].append(time.perf_counter() - start)
        ours_s, bare_s = statistics.median(times["ours"]), statistics.median(times["bare"])
        ratio = bare_s / ours_s  # throughput ratio ours / bare = inverse of the time ratio
        missed |= ratio < GOAL
        print(f"  {size_mb:5.1f} MB ({len(text):,} chars, {bare(text):,} tokens), {runs} runs each")
        print(f"    count_text (gpt-4o)      {ours_s * 1000:8.0f} ms   {size_mb / ours_s:6.1f} MB/s")
        print(f"    bare encode_ordinary     {bare_s * 1000:8.0f} ms   {size_mb / bare_s:6.1f} MB/s")
        print(f"    throughput ratio         {ratio:8.2f}      goal >= {GOAL}: {'met' if ratio >= GOAL else 'MISSED'}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
