"""spend_chart through the MCP client: a real PNG beside a text summary whose numbers match the data.

Test catalog prices (USD per million tokens): test-gpt 2 in (from 2026-06-01); test-claude 3 in / 15 out;
test-gemini 1.25 in.
"""

from __future__ import annotations

import base64
import struct
from datetime import datetime
from pathlib import Path

import pytest
from mcp.client import Client

from client_support import insert
from costhawk_mcp.config import Settings
from costhawk_mcp.server.build import build_server
from insight_support import D, money, req

pytestmark = pytest.mark.anyio

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _seed(settings: Settings) -> None:
    insert(
        settings,
        [
            # test-gpt: 1,000,000 input tokens = $2.00 a request; one on Oct 1, two on Oct 2: $6.00.
            req(datetime(2026, 10, 1, 9), "test-gpt", input_tokens=1_000_000, key="k1", key_name="backend"),
            req(datetime(2026, 10, 2, 9), "test-gpt", input_tokens=1_000_000, key="k1", key_name="backend"),
            req(datetime(2026, 10, 2, 10), "test-gpt", input_tokens=1_000_000, key="k2", key_name="batch-jobs"),
            # test-claude: 100,000 in + 100,000 out = 0.30 + 1.50 = $1.80 a request; Oct 2 and Oct 3: $3.60.
            req(
                datetime(2026, 10, 2, 11),
                "test-claude",
                input_tokens=100_000,
                output_tokens=100_000,
                key="k2",
                key_name="batch-jobs",
            ),
            req(
                datetime(2026, 10, 3, 11),
                "test-claude",
                input_tokens=100_000,
                output_tokens=100_000,
                key="k2",
                key_name="batch-jobs",
            ),
            # test-gemini: 100,000 input = $0.125 on Oct 3.
            req(datetime(2026, 10, 3, 12), "test-gemini", input_tokens=100_000, key="k1", key_name="backend"),
            # An unpriced model: counted apart, never as zero.
            req(datetime(2026, 10, 3, 13), "mystery-model", input_tokens=100_000),
        ],
    )


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_the_chart_is_a_png_with_a_summary_that_matches_the_data(test_catalog: Path, settings: Settings) -> None:
    _seed(settings)

    async with Client(build_server(settings)) as client:
        result = await client.call_tool(
            "spend_chart", {"start": "2026-10-01", "end": "2026-10-04", "group_by": "model", "top": 2}
        )

    assert not result.is_error
    text, image = result.content
    assert text.type == "text" and image.type == "image"
    assert image.mime_type == "image/png"
    png = base64.b64decode(image.data)
    assert _png_size(png) == (1000, 500)
    assert 5_000 < len(png) < 200_000

    # Total 6.00 + 3.60 + 0.125 = $9.725 (shown $9.73); test-gpt 6.00 / 9.725 = 61.70 %;
    # daily: Oct 1 $2.00, Oct 2 2×2.00 + 1.80 = $5.80, Oct 3 1.80 + 0.125 = $1.925.
    assert text.text == (
        "Daily spend by model, 2026-10-01 – 2026-10-03 (UTC): $9.73 in total over 3 days. "
        "Top model: test-gpt with $6.00 (61.7 %). Peak day: 2026-10-02 with $5.80. "
        "1 smaller model group is stacked as 'other'. "
        "1 request on models without a price (mystery-model) is not included."
    )
    summary = result.structured_content
    assert summary is not None
    assert D(summary["total_usd"]) == money("9.725")
    assert [(g["name"], D(g["total_usd"])) for g in summary["groups"]] == [
        ("test-gpt", money("6")),
        ("test-claude", money("3.6")),
        ("other", money("0.125")),
    ]
    assert [(d["day"], D(d["total_usd"])) for d in summary["daily"]] == [
        ("2026-10-01", money("2")),
        ("2026-10-02", money("5.8")),
        ("2026-10-03", money("1.925")),
    ]
    assert (summary["peak_day"], D(summary["peak_day_usd"])) == ("2026-10-02", money("5.8"))
    assert summary["top_group"] == "test-gpt"
    assert summary["image"] == {"format": "png", "width_px": 1000, "height_px": 500, "bytes": len(png)}
    assert summary["unpriced_requests"] == 1


async def test_grouping_by_api_key_uses_key_names(test_catalog: Path, settings: Settings) -> None:
    _seed(settings)

    async with Client(build_server(settings)) as client:
        result = await client.call_tool(
            "spend_chart", {"start": "2026-10-01", "end": "2026-10-04", "group_by": "api_key"}
        )

    summary = result.structured_content
    assert summary is not None
    # batch-jobs (k2): 2.00 + 1.80 + 1.80 = $5.60; backend (k1): 2.00 + 2.00 + 0.125 = $4.125.
    assert [(g["name"], D(g["total_usd"])) for g in summary["groups"]] == [
        ("batch-jobs", money("5.6")),
        ("backend", money("4.125")),
    ]
    assert "Top API key: batch-jobs with $5.60 (57.58 %)" in summary["summary"]  # 5.60 / 9.725


async def test_an_empty_window_returns_a_message_and_no_image(test_catalog: Path, settings: Settings) -> None:
    _seed(settings)

    async with Client(build_server(settings)) as client:
        result = await client.call_tool("spend_chart", {"start": "2026-09-01", "end": "2026-09-08"})

    assert not result.is_error
    assert [c.type for c in result.content] == ["text"]
    assert result.content[0].text == "No priced spend between 2026-09-01 – 2026-09-07 (UTC); nothing to chart."
    summary = result.structured_content
    assert summary is not None
    assert summary["image"] is None and summary["groups"] == [] and summary["days"] == 7


async def test_an_unknown_grouping_is_rejected(test_catalog: Path, settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("spend_chart", {"group_by": "colour"})
    assert result.is_error
    assert "group_by" in result.content[0].text
