"""Command line of the lifecycle: ``python -m lifecycle COMMAND`` (``--help`` for each).

    list                          versions with aliases, metrics and lineage
    prepare VERSION               mark ready (deploy_tag=production_ready), alias candidate
    deploy [VERSION]              through the gate (default: the ready candidate)
    force VERSION --reason TEXT   without the gate (logged, tagged, e-mailed)
    rollback [--reason TEXT]      production <- previous
    events [--last N]             the lifecycle's event log
    train --mode MODE ...         retraining with lineage (lifecycle.retrain)
    job NAME                      run one scheduled job once (lifecycle.jobs)
    import-shipped --to URI       copy the shipped registry's new versions to the host's
    prune [--keep-latest N]       remove the weights of versions no alias names (lifecycle.prune)

``--json`` prints one JSON document (the admin page reads it). Exit status: 0 done,
1 refused by the gate, 2 the request cannot be done (message on stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from lifecycle import events, operations, prune
from lifecycle import model_versions as reg
from lifecycle.model_versions import LifecycleError
from lifecycle.settings import Settings, load


def parser() -> argparse.ArgumentParser:
    """Arguments of every command."""
    p = argparse.ArgumentParser(prog="python -m lifecycle")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.add_argument("--by", default=None, help="who acts (default: the login name)")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="versions with aliases, metrics and lineage")
    pre = sub.add_parser("prepare", help="mark a version ready for deployment")
    pre.add_argument("version")
    dep = sub.add_parser("deploy", help="promote through the gate")
    dep.add_argument("version", nargs="?")
    dep.add_argument("--data", type=Path, nargs="*", default=None,
                     help="held-out source folders (default RADIO_GATE_DATA)")
    dep.add_argument("--production", type=Path, default=None,
                     help="a production dataset version (default RADIO_GATE_PRODUCTION)")
    frc = sub.add_parser("force", help="promote without the gate (needs a reason)")
    frc.add_argument("version")
    frc.add_argument("--reason", required=True)
    rb = sub.add_parser("rollback", help="put the previous version back")
    rb.add_argument("--reason", default="")
    imp = sub.add_parser("import-shipped", help="copy shipped versions the target lacks")
    imp.add_argument("--from", dest="shipped", type=Path, default=Path("mlflow"))
    imp.add_argument("--to", dest="target", required=True, help="the host's tracking URI")
    pr = sub.add_parser("prune", help="remove versions no alias names, beyond the newest N")
    pr.add_argument("--keep-latest", type=int, default=prune.DEFAULT_KEEP_LATEST,
                    help=f"newest versions kept besides the aliased ones "
                    f"({prune.DEFAULT_KEEP_LATEST})")
    pr.add_argument("--dry-run", action="store_true", help="say what would go, change nothing")
    from lifecycle import retrain

    retrain.add_arguments(sub.add_parser("train", help="retrain with lineage"))
    from lifecycle.jobs import JOBS

    job = sub.add_parser("job", help="run one scheduled job once")
    job.add_argument("name", choices=sorted(JOBS))
    ev = sub.add_parser("events", help="the event log")
    ev.add_argument("--last", type=int, default=20)
    return p


def _text(cmd: str, result: Any) -> str:
    if cmd == "list":
        lines = []
        for v in result:
            lin = v["lineage"]
            m = v["metrics"]
            seen = m.get("val_union_seen_accuracy", m.get("val_union_accuracy"))
            lines.append(
                f"v{v['version']:>3} {','.join(v['aliases']) or '-':<22} "
                f"deploy_tag={v['deploy_tag'] or '-':<16} "
                f"val_acc={'-' if seen is None else f'{seen:.3f}'} "
                f"parent={lin['parent_version']} mode={lin['mode']} "
                f"data={lin['dataset_version']} git={lin['git_commit'][:12]}"
                + (f" archived={v['archived']}" if v["archived"] else ""))
        return "\n".join(lines)
    if cmd == "deploy":
        d = result["decision"]
        head = (f"version {result['version']} deployed (previous: {result['previous']})"
                if result["deployed"] else f"version {result['version']} REFUSED by the gate")
        if not d:
            return head
        rows = [f"  {r['source']:<28} n={r['n']:<4} production {r['production_correct']:<4} "
                f"candidate {r['candidate_correct']:<4} b={r['only_production']} "
                f"c={r['only_candidate']} p={r['p_worse']:.4g}"
                + ("  WORSE" if r["worse"] else "") for r in d["sources"]]
        rows += [f"  COVID films of {r['source']:<18} n={r['n']:<4} production found "
                 f"{r['production_correct']:<4} candidate {r['candidate_correct']:<4} "
                 f"b={r['only_production']} c={r['only_candidate']} p={r['p_worse']:.4g}"
                 + ("  WORSE" if r["worse"] else "") for r in d.get("covid_films", [])]
        rows += [f"  not COVID, {r['source']:<23} n={r['n']:<4} called COVID: production "
                 f"{r['n'] - r['production_correct']:<4} candidate "
                 f"{r['n'] - r['candidate_correct']:<4} p={r['p_worse']:.4g}"
                 + ("  WORSE" if r["worse"] else "") for r in d.get("not_covid_films", [])]
        an = d["adult_normals"]
        rows.append(f"  adult normals called COVID: candidate {an['candidate_called_covid']}"
                    f"/{an['n']}, production {an['production_called_covid']}/{an['n']}")
        return "\n".join([head, *rows, *[f"reason: {r}" for r in d["reasons"]]])
    if cmd == "prune":
        verb = "would prune" if result["dry_run"] else "pruned"
        return (f"kept {', '.join(result['kept']) or 'nothing'}; "
                f"{verb} {', '.join(result['pruned']) or 'nothing'}")
    if cmd == "events":
        return "\n".join(json.dumps(e, sort_keys=True) for e in result)
    return json.dumps(result, sort_keys=True) if not isinstance(result, str) else result


def run(args: argparse.Namespace, s: Settings) -> tuple[Any, int]:
    """Do the command; ``(result, exit status)``."""
    by = args.by or getpass.getuser()
    if args.cmd == "list":
        return operations.list_versions(s), 0
    if args.cmd == "prepare":
        return operations.prepare(s, args.version, by), 0
    if args.cmd == "deploy":
        from dataclasses import replace

        if args.data is not None or args.production is not None:
            s = replace(s, gate_data=tuple(args.data or ()), gate_production=args.production)
        result = operations.deploy(s, args.version, by)
        return result, 0 if result["deployed"] else 1
    if args.cmd == "force":
        return operations.force(s, args.version, by, args.reason), 0
    if args.cmd == "rollback":
        return operations.rollback(s, by, args.reason), 0
    if args.cmd == "events":
        return events.read(s.events_log, args.last), 0
    if args.cmd == "train":
        from lifecycle import retrain

        return retrain.from_args(args, s, by), 0
    if args.cmd == "job":
        from lifecycle.jobs import run_job

        result = run_job(args.name, s)
        return result, 0 if result["ok"] else 1
    if args.cmd == "import-shipped":
        from lifecycle.shipped import import_shipped

        result = import_shipped(args.shipped, args.target, s.model_name)
        events.record(s.events_log, "imported_shipped", by=by, **result)
        return result, 0
    if args.cmd == "prune":
        cl = reg.client(s.tracking_uri)
        result = prune.prune(cl, s.model_name, s.registry_root, args.keep_latest, args.dry_run)
        if not args.dry_run:
            prune.compact(s.tracking_uri)
            events.record(s.events_log, "pruned", by=by, **result)
        return result, 0
    raise AssertionError(args.cmd)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parser().parse_args(argv)
    # With --json, stdout is one JSON document: MLflow's run links and training's progress
    # lines go to stderr.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    try:
        s = load()
        with contextlib.redirect_stdout(sys.stderr if args.json else sys.stdout):
            result, status = run(args, s)
    except (LifecycleError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, sort_keys=True, default=str) if args.json else _text(args.cmd,
                                                                                   result))
    return status
