"""Where the package's data files are: inside the installed wheel, or data/ in a source checkout."""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from costhawk_mcp.errors import CatalogError

# An editable install imports from src/, where the wheel's force-included data/ folder is absent.
_SOURCE_DATA = Path(__file__).resolve().parents[2] / "data"


def data_file(*parts: str) -> Traversable:
    """A packaged data file such as ("tiktoken", "o200k_base.tiktoken.gz")."""
    packaged = resources.files("costhawk_mcp").joinpath("data", *parts)
    if packaged.is_file():
        return packaged
    source = _SOURCE_DATA.joinpath(*parts)
    if source.is_file():
        return source
    raise CatalogError(f"data file {'/'.join(parts)} is missing from the installation; reinstall costhawk-mcp")
