"""`costhawk-mcp pricing show/list` and `--version`: the answer on stdout, diagnostics on stderr."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from costhawk_mcp import __version__
from costhawk_mcp.cli import main
from transport_support import child_env

pytestmark = pytest.mark.usefixtures("test_catalog")


def test_pricing_show_prints_current_prices_and_history(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pricing", "show", "openai/TEST-GPT"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "test-gpt (openai, chat)",
        "  aliases: test-gpt-2026-01-01, openai/test-gpt",
        "  prices per million tokens, effective 2026-06-01:",
        "    input $2  cached input $0.5  output $8",
        "    cache write 5m -  1h -",
        "    batch input $1  batch output $4",
        "    priority input $4  priority output $16",
        "  context window 100000  max output 10000  token counts: exact",
        "  history … → 2026-06-01: input $10 output $40",
    ]
    assert err == ""


def test_pricing_show_on_a_date_prints_the_prices_then(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pricing", "show", "test-gpt", "--date", "2026-05-31"]) == 0
    out = capsys.readouterr().out
    assert "  prices per million tokens, effective as far back as known:" in out
    assert "    input $10  cached input $5  output $40" in out
    assert "  history 2026-06-01 → now: input $2 output $8" in out


def test_pricing_show_long_context_and_cache_writes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pricing", "show", "test-claude"]) == 0
    out = capsys.readouterr().out
    assert "    cache write 5m $3.75  1h $6" in out
    assert "    above 200,000 input tokens: input $6  output $22.5" in out
    assert "token counts: approximate" in out


def test_pricing_show_json_is_the_resource_view(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pricing", "show", "test-gpt", "--json"]) == 0
    view = json.loads(capsys.readouterr().out)
    assert (view["model"], view["input_per_mtok"], view["output_per_mtok"]) == ("test-gpt", 2, 8)
    assert [p["effective_to"] for p in view["history"]] == ["2026-06-01"]


def test_pricing_list_prints_a_table_and_the_count_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pricing", "list"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["model", "provider", "input", "cached", "output", "$/Mtok"]
    rows = [line.split() for line in lines[1:]]
    assert rows == [
        ["test-gpt", "openai", "2", "0.5", "8"],
        ["test-gpt-mini", "openai", "0.2", "0.05", "0.8"],
        ["test-legacy", "openai", "30", "-", "60"],
        ["test-claude", "anthropic", "3", "0.3", "15"],
        ["test-gemini", "google", "1.25", "0.125", "10"],
        ["test-embed", "openai", "0.02", "-", "0"],
    ]
    assert err.startswith("6 models from ") and err.rstrip().endswith("pricing.json")


def test_pricing_list_filters_by_provider_alias(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pricing", "list", "--provider", "gemini", "--json"]) == 0
    assert [m["model"] for m in json.loads(capsys.readouterr().out)] == ["test-gemini"]


def test_unknown_model_is_one_line_on_stderr_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pricing", "show", "test-gtp"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("costhawk-mcp pricing: model: unknown model 'test-gtp'; close matches: test-gpt")
    assert len(err.strip().splitlines()) == 1


def test_unknown_provider_is_one_line_on_stderr_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pricing", "list", "--provider", "nope"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "provider: unknown provider 'nope'; allowed: openai" in err


def test_a_bad_date_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["pricing", "show", "test-gpt", "--date", "2026-13-01"])
    assert raised.value.code == 2
    assert "argument --date" in capsys.readouterr().err


def test_version_from_a_real_process() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "costhawk_mcp", "--version"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, f"costhawk-mcp {__version__}\n", "")
