"""training/cli.py: argument parsing, missing folders, the hyper-parameter grid."""

from __future__ import annotations

from pathlib import Path

import pytest

import training.pipeline
from serving.preprocessing import IMAGE_SIZE
from training import cli
from training.fit import HParams
from training.sources import SOURCES, jsrt_normals


@pytest.fixture
def runs(monkeypatch) -> list:
    """The configurations main() would train with (nothing is trained)."""
    configs: list = []
    monkeypatch.setattr(training.pipeline, "run", configs.append)
    return configs


@pytest.fixture
def folders(tmp_path) -> list[Path]:
    paths = [tmp_path / "a", tmp_path / "b"]
    for p in paths:
        p.mkdir()
    return paths


@pytest.mark.parametrize(
    "argv",
    [
        ["train"],  # neither --data nor --data-root
        ["train", "--data", "x", "--data-root", "y"],  # both
        ["train", "--data", "x", "--schedule", "linear"],  # not a known schedule
        ["train", "--data", "x", "--balance", "oversample"],
    ],
)
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.parse(argv)
    assert exc.value.code == 2 and "error:" in capsys.readouterr().err


def test_missing_folders_exit_2_and_are_named(folders, runs, capsys):
    absent = folders[0].parent / "nowhere"
    assert cli.main(["train", "--data", str(folders[0]), str(absent)]) == 2
    err = capsys.readouterr().err
    assert str(absent) in err and str(folders[0]) not in err
    assert runs == []  # nothing trained


def test_data_root_means_every_known_source_under_it(tmp_path, runs, capsys):
    root = tmp_path / "data"
    assert cli.main(["train", "--data-root", str(root)]) == 2  # none of them exists
    err = capsys.readouterr().err
    assert all(str(root / name) in err for name in SOURCES)
    assert "jsrt-scr" not in err  # train-only sources only when asked for
    for name in SOURCES:
        (root / name).mkdir(parents=True)
    assert cli.main(["train", "--data-root", str(root)]) == 0
    assert runs[0].sources == [root / name for name in SOURCES]


def test_an_extra_source_is_added_after_the_evaluated_ones(tmp_path, runs, capsys):
    root = tmp_path / "data"
    for name in SOURCES:
        (root / name).mkdir(parents=True)
    argv = ["train", "--data-root", str(root), "--extra-source", "jsrt-adult-normal"]
    assert cli.main(argv) == 2  # asked for, absent: named, nothing trained
    assert str(tmp_path / "lung-masks" / "jsrt-scr") in capsys.readouterr().err and runs == []
    (tmp_path / "lung-masks" / "jsrt-scr").mkdir(parents=True)
    (tmp_path / "lung-masks" / "jsrt-scr" / "metadata.csv").write_text("file,nodule\n")
    assert cli.main(argv) == 0
    assert runs[0].sources == [root / name for name in SOURCES] + [jsrt_normals(root)]
    with pytest.raises(SystemExit):
        cli.parse(["train", "--data-root", str(root), "--extra-source", "nowhere"])


def test_defaults_give_one_setting_and_the_served_image_size(folders, runs):
    assert cli.main(["train", "--data", *map(str, folders)]) == 0
    (cfg,) = runs
    assert cfg.sources == folders and cfg.grid == [HParams()]
    # a training registers; production moves only through the gate (or --promote)
    assert cfg.size == IMAGE_SIZE and not cfg.promote and cfg.limit is None
    assert (cfg.folds, cfg.seed, cfg.balance) == (5, 42, "weights")


def test_grid_is_the_product_of_the_listed_values(folders, runs):
    argv = ["train", "--data", *map(str, folders), "--epochs", "3", "--batch-size", "4"]
    argv += ["--learning-rate", "1e-3", "2e-3", "--dropout", "0.1", "0.2", "0.3"]
    argv += ["--schedule", "plateau", "cosine", "--patience", "2"]
    assert cli.main(argv) == 0
    grid = runs[0].grid
    assert len(grid) == 2 * 3 * 2 and len(set(grid)) == len(grid)
    assert {(h.learning_rate, h.dropout, h.schedule) for h in grid} == {
        (lr, dr, s) for lr in (1e-3, 2e-3) for dr in (0.1, 0.2, 0.3) for s in ("plateau", "cosine")
    }
    assert {(h.epochs, h.batch_size, h.patience) for h in grid} == {(3, 4, 2)}


def test_run_options_reach_the_configuration(folders, runs, tmp_path):
    argv = ["train", "--data", *map(str, folders), "--image-size", "64", "--limit", "5"]
    argv += ["--no-promote", "--folds", "3", "--seed", "7", "--balance", "downsample"]
    argv += ["--registry", str(tmp_path / "reg")]
    assert cli.main(argv) == 0
    cfg = runs[0]
    assert (cfg.size, cfg.limit, cfg.promote, cfg.folds, cfg.seed) == (64, 5, False, 3, 7)
    assert cfg.balance == "downsample" and cfg.registry == tmp_path / "reg"


def test_a_tracking_server_url_is_kept_as_a_url(folders, runs):
    """Training can log to the MLflow host's registry (through its SSH tunnel)."""
    assert cli.main(["train", "--data", *map(str, folders), "--registry",
                     "http://127.0.0.1:5000"]) == 0
    assert runs[0].registry == "http://127.0.0.1:5000"


def test_reference_version_gives_its_source_folders(tmp_path: Path):
    ref = tmp_path / "reference" / "v3"
    for name in ("pub-src", "production-site-a"):
        (ref / name / "train").mkdir(parents=True)
    (ref / "manifest.csv").write_text("file\n")
    args = cli.parse(["train", "--reference", str(ref)])
    assert cli.sources_of(args) == [ref / "production-site-a", ref / "pub-src"]


def test_data_and_data_root_name_their_folders(tmp_path: Path):
    assert cli.sources_of(cli.parse(["train", "--data", "a", "b"])) == [Path("a"), Path("b")]
    root = cli.sources_of(cli.parse(["train", "--data-root", str(tmp_path)]))
    assert [p.name for p in root] == list(SOURCES)


def test_missing_reference_is_reported(tmp_path: Path, capsys):
    assert cli.main(["train", "--reference", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err
