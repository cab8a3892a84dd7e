"""The lifecycle's actions, as the CLI, the admin page and the jobs call them: prepare,
deploy through the gate, force, roll back. Each moves aliases (:mod:`lifecycle.model_versions`),
appends to the event log (:mod:`lifecycle.events`) and sends the e-mail a person must see
(:mod:`lifecycle.notify`). The model server follows ``production`` by itself
(:mod:`lifecycle.follow`), so no action here touches a server.
"""

from __future__ import annotations

import json
from typing import Any

from lifecycle import events, heldout, notify
from lifecycle import model_versions as reg
from lifecycle.promotion_gate import decide
from lifecycle.settings import Settings
from monitoring.model_drift import CARD_TAG, card_from_decision


def _client(s: Settings):
    return reg.client(s.tracking_uri)


def list_versions(s: Settings) -> list[dict[str, Any]]:
    """Every version with aliases, metrics, lineage and card figures (newest first)."""
    cl = _client(s)
    rows = [v.as_dict() for v in reg.versions(cl, s.model_name)]
    for row in rows:
        row["card"] = card_figures(row["tags"], row["metrics"], f"version {row['version']}")
        if not row["card"]["figures"] and reg.PRODUCTION in row["aliases"]:
            # only production's card is looked for up its lineage: a few calls, not N
            row["card"] = _ancestor_card(cl, s.model_name, row["tags"], row["version"])
    return rows


def card_figures(tags: dict[str, str], metrics: dict[str, float],
                 whose: str) -> dict[str, Any]:
    """A version's model-card figures (accuracy, COVID recall, adult normals called COVID)
    and where they come from: its ``model_card`` tag (the promotion gate's held-out
    images), else its training run's validation metrics (the model card's definitions,
    as :func:`monitoring.model_drift.card_from_summary`)."""
    if tags.get(CARD_TAG):
        try:
            figures = {k: float(v) for k, v in json.loads(tags[CARD_TAG]).items()}
            return {"figures": figures, "source": f"{whose}: promotion gate"}
        except (ValueError, TypeError, AttributeError):
            pass
    figures = {}
    for key, metric in (("accuracy", "val_union_accuracy"),
                        ("covid_recall", "val_union_covid_recall")):
        if metric in metrics:
            figures[key] = metrics[metric]
    normals = metrics.get("val_nih-adult-normal_non_covid_called_covid",
                          metrics.get("val_union_non_covid_called_covid"))
    if normals is not None:
        figures["normals_called_covid"] = normals
    return {"figures": figures, "source": f"{whose}: training run" if figures else ""}


def _ancestor_card(cl, name: str, tags: dict[str, str], version: str) -> dict[str, Any]:
    """The card of the version ``version`` was repackaged from or derived from (a version
    repackaged or registered again has no run metrics of its own), said so."""
    from lifecycle.prune import version_record

    seen = {version}
    ancestor = tags.get("repackaged_from") or tags.get("parent_version") or ""
    while ancestor and ancestor != "none" and ancestor not in seen and len(seen) < 10:
        seen.add(ancestor)
        record = version_record(cl, name, ancestor)
        if record is None:
            break
        shown = reg.run_metrics(cl, [record.run_id]).get(record.run_id, {})
        card = card_figures(record.tags, shown, f"ancestor version {ancestor}")
        if card["figures"]:
            return card
        ancestor = record.tags.get("repackaged_from") or record.tags.get("parent_version", "")
    return {"figures": {}, "source": ""}


def prepare(s: Settings, version: str, by: str) -> dict[str, Any]:
    """Mark ``version`` production_ready and make it the candidate."""
    reg.prepare(_client(s), s.model_name, version, by)
    return events.record(s.events_log, "prepared", version=str(version), by=by)


def load_heldout(s: Settings) -> heldout.HeldOut:
    """The gate's held-out images from the settings; an error says what to set."""
    if not s.gate_data and s.gate_production is None:
        raise reg.LifecycleError(
            "the gate has no held-out data: set RADIO_GATE_DATA (source folders with a val "
            "split) and/or RADIO_GATE_PRODUCTION (a production dataset version)")
    data = heldout.load(s.gate_data, s.gate_production)
    if not data.labels:
        raise reg.LifecycleError("the gate's held-out folders hold no readable image")
    return data


def evaluate(s: Settings, production: str, candidate: str,
             data: heldout.HeldOut | None = None):
    """The gate's :class:`~lifecycle.promotion_gate.Decision` for ``candidate`` against
    ``production``."""
    data = data if data is not None else load_heldout(s)
    ask = lambda v: heldout.answers(s.tracking_uri, s.registry_root, s.model_name, v,  # noqa: E731
                                    data.images)
    return decide(production, candidate, ask(production), ask(candidate), data.labels,
                  data.sources, s.gate_alpha)


def deploy(s: Settings, version: str | None, by: str,
           data: heldout.HeldOut | None = None) -> dict[str, Any]:
    """Promote ``version`` (default: the ready candidate) if it passes the gate.

    Returns ``{"deployed", "version", "previous", "decision"}``; a refusal leaves every alias
    where it was, tags the version ``deploy_tag=refused`` with the reasons, and e-mails them.
    """
    cl = _client(s)
    name = s.model_name
    version = str(version) if version else reg.ready_candidate(cl, name)
    if version is None:
        raise reg.LifecycleError("no version given and no candidate marked production_ready")
    reg.require_version(cl, name, version)
    prod = reg.alias_version(cl, name, reg.PRODUCTION)
    if prod == version:
        raise reg.LifecycleError(f"version {version} is already in production")
    decision = evaluate(s, prod, version, data) if prod is not None else None
    if decision is not None and not decision.passed:
        reg.refuse(cl, name, version, decision.reasons)
        events.record(s.events_log, "refused", version=version, production=prod, by=by,
                      reasons=decision.reasons)
        notify.send(f"promotion of {name} version {version} refused",
                    "The gate refused the candidate:\n- " + "\n- ".join(decision.reasons)
                    + "\n\nFigures:\n" + json.dumps(decision.as_dict(), indent=1))
        return {"deployed": False, "version": version, "previous": prod,
                "decision": decision.as_dict()}
    old = reg.switch(cl, name, version, by, "gate")
    if decision is not None:
        # The new production version's own card: model drift's yardstick from now on.
        card = card_from_decision(decision.as_dict())
        if card:
            cl.set_model_version_tag(name, version, CARD_TAG, json.dumps(card))
    events.record(s.events_log, "deployed", version=version, previous=old, by=by)
    notify.send(f"{name} version {version} promoted to production",
                f"Version {version} passed the gate and replaced version {old}.\n\n"
                + (json.dumps(decision.as_dict(), indent=1) if decision else "no comparator"))
    return {"deployed": True, "version": version, "previous": old,
            "decision": decision.as_dict() if decision else None}


def force(s: Settings, version: str, by: str, reason: str) -> dict[str, Any]:
    """Promote ``version`` without the gate: needs a reason; logged, tagged and e-mailed."""
    if not reason.strip():
        raise reg.LifecycleError("a forced deploy needs a reason")
    cl = _client(s)
    old = reg.switch(cl, s.model_name, str(version), by, "forced", reason)
    cl.set_model_version_tag(s.model_name, str(version), "forced_by", by)
    event = events.record(s.events_log, "forced", version=str(version), previous=old, by=by,
                          reason=reason)
    notify.send(f"{s.model_name} version {version} FORCED to production",
                f"{by} forced version {version} into production without the gate "
                f"(replacing {old}).\nReason: {reason}")
    return event


def rollback(s: Settings, by: str, reason: str = "") -> dict[str, Any]:
    """Put ``previous`` back in production (the same switch; a second rollback undoes it)."""
    cl = _client(s)
    target = reg.rollback_target(cl, s.model_name)
    old = reg.switch(cl, s.model_name, target, by, "rollback", reason)
    if old is not None:
        cl.set_model_version_tag(s.model_name, old, "rolled_back", reg.today())
    event = events.record(s.events_log, "rolled_back", version=target, previous=old, by=by,
                          reason=reason)
    notify.send(f"{s.model_name} rolled back to version {target}",
                f"{by} rolled production back from version {old} to {target}. {reason}")
    return event
