"""training/cli.py: which source folders each way of naming the data gives."""

from __future__ import annotations

from pathlib import Path

from training.cli import main, parse, sources_of
from training.sources import SOURCES


def test_reference_version_gives_its_source_folders(tmp_path: Path):
    ref = tmp_path / "reference" / "v3"
    for name in ("pub-src", "production-site-a"):
        (ref / name / "train").mkdir(parents=True)
    (ref / "manifest.csv").write_text("file\n")
    args = parse(["train", "--reference", str(ref)])
    assert sources_of(args) == [ref / "production-site-a", ref / "pub-src"]


def test_data_and_data_root(tmp_path: Path):
    assert sources_of(parse(["train", "--data", "a", "b"])) == [Path("a"), Path("b")]
    root = sources_of(parse(["train", "--data-root", str(tmp_path)]))
    assert [p.name for p in root] == list(SOURCES)


def test_missing_reference_is_reported(tmp_path: Path, capsys):
    assert main(["train", "--reference", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err
