"""training/registry.py: portable paths in the SQLite registry."""

import sqlite3

from training.registry import make_absolute, make_relative


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
