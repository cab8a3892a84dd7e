"""lifecycle/model_versions.py and lifecycle/operations.py without the gate: aliases, tags, log."""

from __future__ import annotations

import pytest

from lifecycle import events, operations
from lifecycle import model_versions as reg


def _aliases(s):
    cl = reg.client(s.tracking_uri)
    return {a: reg.alias_version(cl, s.model_name, a) for a in reg.ALIASES}


def _tags(s, version):
    return reg.client(s.tracking_uri).get_model_version(s.model_name, version).tags


def test_prepare_marks_ready_and_sets_candidate(bare_registry):
    s = bare_registry
    operations.prepare(s, "3", by="ds")
    assert _aliases(s)["candidate"] == "3"
    assert _tags(s, "3")["deploy_tag"] == "production_ready"
    assert reg.ready_candidate(reg.client(s.tracking_uri), s.model_name) == "3"
    with pytest.raises(reg.LifecycleError, match="already in production"):
        operations.prepare(s, "2", by="ds")
    with pytest.raises(reg.LifecycleError, match="no version 9"):
        operations.prepare(s, "9", by="ds")


def test_force_switches_archives_and_keeps_who_and_why(bare_registry):
    s = bare_registry
    operations.prepare(s, "3", by="ds")
    with pytest.raises(reg.LifecycleError, match="reason"):
        operations.force(s, "3", by="admin", reason="  ")
    operations.force(s, "3", by="admin", reason="hotfix for site X")
    assert _aliases(s) == {"production": "3", "previous": "2", "candidate": None}
    new, old = _tags(s, "3"), _tags(s, "2")
    assert new["deployed_how"] == "forced" and new["forced_by"] == "admin"
    assert new["promotion_reason"].endswith("hotfix for site X")
    assert new["deploy_tag"] == "deployed" and "archived" not in new
    assert old["archived"]
    last = events.read(s.events_log)[-1]
    assert last["action"] == "forced" and last["reason"] == "hotfix for site X"
    assert last["by"] == "admin" and last["previous"] == "2"


def test_rollback_is_the_same_switch_and_undoes_itself(bare_registry):
    s = bare_registry
    with pytest.raises(reg.LifecycleError, match="no 'previous'"):
        operations.rollback(s, by="ops")
    operations.force(s, "3", by="admin", reason="try 3")
    operations.rollback(s, by="ops", reason="3 misbehaves")
    assert _aliases(s)["production"] == "2" and _aliases(s)["previous"] == "3"
    assert _tags(s, "3")["rolled_back"] and _tags(s, "3")["archived"]
    assert "archived" not in _tags(s, "2")
    operations.rollback(s, by="ops")
    assert _aliases(s)["production"] == "3"
    assert [e["action"] for e in events.read(s.events_log)] == [
        "forced", "rolled_back", "rolled_back"]


def test_list_shows_aliases_lineage_and_metrics(bare_registry):
    s = bare_registry
    operations.prepare(s, "3", by="ds")
    rows = operations.list_versions(s)
    assert [r["version"] for r in rows] == ["3", "2", "1"]
    by = {r["version"]: r for r in rows}
    assert by["2"]["aliases"] == ["production"] and by["3"]["aliases"] == ["candidate"]
    assert by["3"]["lineage"]["parent_version"] == "2"
    assert by["3"]["lineage"]["mode"] == "?"  # older versions lack the tag: shown, not faked


def test_list_gives_card_figures_production_from_its_ancestor(bare_registry):
    import json
    from pathlib import Path

    s = bare_registry
    cl = reg.client(s.tracking_uri)
    folder = Path(s.tracking_uri.removeprefix("sqlite:///")).parent
    run = cl.create_run(cl.create_experiment("t", artifact_location=str(folder / "art")))
    for key, value in (("val_union_accuracy", 0.75), ("val_union_covid_recall", 0.5),
                       ("val_union_non_covid_called_covid", 0.125), ("loss", 3.0)):
        cl.log_metric(run.info.run_id, key, value)
    cl.create_model_version(s.model_name, str(folder / "m4"), run_id=run.info.run_id)
    cl.create_model_version(s.model_name, str(folder / "m5"), tags={"repackaged_from": "4"})
    cl.set_registered_model_alias(s.model_name, "production", "5")
    rows = {r["version"]: r for r in operations.list_versions(s)}
    # one search read every run's metrics: version 4's, not the unshown loss
    assert rows["4"]["metrics"] == {"val_union_accuracy": 0.75, "val_union_covid_recall": 0.5,
                                    "val_union_non_covid_called_covid": 0.125}
    assert rows["5"]["card"] == {
        "figures": {"accuracy": 0.75, "covid_recall": 0.5, "normals_called_covid": 0.125},
        "source": "ancestor version 4: training run"}
    assert rows["1"]["card"] == {"figures": {}, "source": ""}
    cl.set_model_version_tag(s.model_name, "5", "model_card", json.dumps({"accuracy": 0.875}))
    rows = {r["version"]: r for r in operations.list_versions(s)}
    assert rows["5"]["card"] == {"figures": {"accuracy": 0.875},
                                 "source": "version 5: promotion gate"}


def test_list_reads_the_shipped_registry_and_its_pruned_history(shipped_copy):
    rows = {r["version"]: r for r in operations.list_versions(shipped_copy)}
    (prod,) = [v for v, r in rows.items() if "production" in r["aliases"]]
    # the shipped registry's own word, not a pinned number (a refused version may be newer)
    assert prod == reg.alias_version(reg.client(shipped_copy.tracking_uri), "radio-cxr",
                                     "production")
    assert rows[prod]["lineage"]["git_commit"] not in ("?", "unknown")
    # versions pruned from the shipped registry keep their record on their runs
    from lifecycle.prune import version_record

    first = version_record(reg.client(shipped_copy.tracking_uri), "radio-cxr", "1")
    assert first is not None and first.pruned and first.tags["parent_version"] == "none"
    metrics = reg.client(shipped_copy.tracking_uri).get_run(first.run_id).data.metrics
    assert 0 < metrics["val_union_accuracy"] <= 1
    assert "val_nih-adult-normal_non_covid_called_covid" in metrics


def test_deploy_without_data_says_what_to_set(bare_registry):
    with pytest.raises(reg.LifecycleError, match="RADIO_GATE_DATA"):
        operations.deploy(bare_registry, "3", by="ds")
    with pytest.raises(reg.LifecycleError, match="no candidate"):
        operations.deploy(bare_registry, None, by="ds")


def test_cli_json_is_one_document_even_when_mlflow_prints(bare_registry, monkeypatch, capsys):
    from lifecycle import cli

    monkeypatch.setenv("MLFLOW_TRACKING_URI", bare_registry.tracking_uri)
    monkeypatch.setenv("RADIO_LIFECYCLE_LOG", str(bare_registry.events_log))
    monkeypatch.setattr(operations, "list_versions",
                        lambda s: print("noise from a library") or [{"version": "1"}])
    assert cli.main(["--json", "list"]) == 0
    out = capsys.readouterr()
    assert out.out.strip() == '[{"version": "1"}]' and "noise" in out.err
