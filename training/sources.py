"""The chest X-ray sources Radio trains and is evaluated on: the one list of them.

``make train``, ``make bench-model``, ``make bench-ood`` and the tests name sources only
through this module, so adding a source is one line here. Two kinds:

* :data:`SOURCES`: folders under ``../shared/data`` laid out ``<split>/<class>/<image>``,
  trained on their train split and **evaluated** on their val split, always per source
  (the model issue's figures are on the union of these val splits);
* :data:`EXTRA`: films picked from another public set by its own metadata
  (:class:`CatalogueSource`), trained on when asked (``--extra-source NAME``), never part
  of the val figures. Leave-one-source-out can hold one out (``--only NAME``). None is in
  ``make train``: the JSRT normals were measured and not kept (README's model card).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Corrected on 2026-11-25 (see ../shared/data/README.md): ieee8023-adult brings adult
# normals and non-COVID adult pneumonia from the collection the COVID films come from.
# Added on 2026-12-07: nih-adult-abnormal, adult abnormal films that are not COVID (class
# "Other Abnormal").
SOURCES = ("covid19-3class", "nih-adult-normal", "hannover-covid", "ieee8023-adult",
           "nih-adult-abnormal")
DEFAULT_ROOT = Path("../shared/data")


@dataclass(frozen=True)
class CatalogueSource:
    """Films of another data set, chosen by a column of its ``metadata.csv``.

    The set is laid out its own way (``file`` column: a path inside ``folder``; ``patient_id``
    column); every chosen film is a **train** image of one class, whatever split the set
    itself gives it (those splits serve another purpose), and the source has no val split.
    """

    name: str
    folder: Path
    label: str
    column: str
    value: str

    def is_dir(self) -> bool:
        """Present (what :func:`missing` asks of every source)."""
        return (self.folder / "metadata.csv").is_file()

    def __str__(self) -> str:
        return str(self.folder)


def jsrt_normals(root: str | Path = DEFAULT_ROOT) -> CatalogueSource:
    """The 92 JSRT films without a nodule (adults, 14 Japanese institutions) as Normal.

    A second adult-normal population beside nih-adult-normal (a hospital the model never
    saw had its normal adults called COVID when nih-adult-normal was its only one). The
    films with a nodule are not used: a film with a nodule is not "Normal", and Radio has
    no class for it. They sit beside the data, in ``../shared/lung-masks`` (the lung
    segmenter's training set).
    """
    return CatalogueSource("jsrt-adult-normal", Path(root).parent / "lung-masks" / "jsrt-scr",
                           "Normal", "nodule", "no")


# Train-only sources by name: each a function of the data root.
EXTRA = {jsrt_normals().name: jsrt_normals}
# What a training run, a data listing or a skip check accepts as one source.
Source = Path | CatalogueSource


def source_paths(root: str | Path = DEFAULT_ROOT) -> list[Path]:
    """The evaluated source folders under ``root``, in :data:`SOURCES` order."""
    return [Path(root) / name for name in SOURCES]


def training_sources(root: str | Path = DEFAULT_ROOT, extra: Sequence[str] = ()) -> list[Source]:
    """What a model is trained on: the evaluated sources, then the :data:`EXTRA` ones named."""
    return [*source_paths(root), *(EXTRA[name](root) for name in extra)]


def missing(paths: Sequence[Source]) -> list[str]:
    """The sources among ``paths`` that do not exist (for a clear error or skip reason)."""
    return [str(p) for p in paths if not p.is_dir()]
