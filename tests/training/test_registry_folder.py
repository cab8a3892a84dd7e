"""training/registry_folder.py: portable paths in the SQLite registry."""

import sqlite3

from training.registry_folder import make_absolute, make_relative


def test_paths_become_relative_and_back(tmp_path):
    reg = tmp_path / "reg"
    reg.mkdir()
    con = sqlite3.connect(reg / "mlflow.db")
    con.execute("create table runs (run_uuid varchar(32), artifact_uri varchar(200), n integer)")
    con.execute("insert into runs values ('a', ?, 1)", (f"{reg}/artifacts/1/a/artifacts",))
    con.execute("insert into runs values ('b', ?, 2)", (f"file://{reg}/artifacts/1/b",))
    con.execute("insert into runs values ('c', '/elsewhere/x', 3)")
    con.commit()
    con.close()
    assert make_relative(reg) == 2
    rows = dict(
        sqlite3.connect(reg / "mlflow.db").execute("select run_uuid, artifact_uri from runs")
    )
    assert rows == {
        "a": "reg/artifacts/1/a/artifacts",
        "b": "reg/artifacts/1/b",
        "c": "/elsewhere/x",
    }
    assert make_absolute(reg) == 2
    rows = dict(
        sqlite3.connect(reg / "mlflow.db").execute("select run_uuid, artifact_uri from runs")
    )
    assert rows["a"] == f"{reg}/artifacts/1/a/artifacts"


def test_promotion_with_a_reason_moves_the_alias_and_keeps_the_reason(tmp_path, capsys):
    import shutil

    from helpers import ROOT, register_again
    from mlflow import MlflowClient

    from training.registry_folder import main, use_registry

    shutil.copytree(ROOT / "mlflow", tmp_path / "mlflow", ignore=shutil.ignore_patterns("*.sh"))
    use_registry(tmp_path / "mlflow")
    client = MlflowClient()
    other = register_again(tmp_path / "mlflow",
                           client.get_model_version_by_alias("radio-cxr", "production").version)
    assert main(["promote", "radio-cxr", other, "--reason", "rollback drill"]) == 0
    mv = client.get_model_version_by_alias("radio-cxr", "production")
    assert str(mv.version) == other and mv.tags["promotion_reason"].endswith(": rollback drill")
    assert f"production -> version {other}" in capsys.readouterr().out
    assert main(["promote", "radio-cxr", "99"]) == 1  # no such version: an error, no change
    assert str(client.get_model_version_by_alias("radio-cxr", "production").version) == other
