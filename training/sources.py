"""The chest X-ray sources Radio trains and is evaluated on: the one list of them.

``make train``, ``make bench-model``, ``make bench-ood`` and the tests name sources only
through :data:`SOURCES` (folder names under ``../shared/data``), so adding a source is one
line here. The val figures are always reported per source.
"""

from __future__ import annotations

from pathlib import Path

# Corrected on 2026-11-25 (see ../shared/data/README.md): ieee8023-adult brings adult
# normals and non-COVID adult pneumonia from the collection the COVID films come from.
SOURCES = ("covid19-3class", "nih-adult-normal", "hannover-covid", "ieee8023-adult")
DEFAULT_ROOT = Path("../shared/data")


def source_paths(root: str | Path = DEFAULT_ROOT) -> list[Path]:
    """The source folders under ``root``, in :data:`SOURCES` order."""
    return [Path(root) / name for name in SOURCES]


def missing(paths: list[Path]) -> list[str]:
    """The folders among ``paths`` that do not exist (for a clear error or skip reason)."""
    return [str(p) for p in paths if not p.is_dir()]
