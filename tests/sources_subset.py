"""A few real films of every source and split, laid out as ../shared/data is: what the jobs'
end-to-end tests place on a host (the gate's val splits, the drift reference's train splits)
without the minutes the whole data set would take them."""

from __future__ import annotations

import shutil
from pathlib import Path


def copy_subset(sources: list[Path], dest: Path, per_class: int = 2) -> Path:
    """``dest/<source>/<split>/<class>/<first per_class films>`` (and each source's own
    metadata files, which name the patients); ``dest``."""
    for source in sources:
        for meta in source.glob("*.csv"):
            (dest / source.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(meta, dest / source.name / meta.name)
        for split in ("train", "val"):
            for class_dir in sorted(p for p in (source / split).iterdir() if p.is_dir()):
                target = dest / source.name / split / class_dir.name
                target.mkdir(parents=True, exist_ok=True)
                for film in sorted(class_dir.iterdir())[:per_class]:
                    shutil.copy(film, target / film.name)
    return dest
