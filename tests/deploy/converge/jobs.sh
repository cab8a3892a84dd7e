#!/usr/bin/env bash
# Run inside the converge container by `converge.sh jobs`, after both playbooks, as root:
# what the web app's admin page lists (through its own environment: the one registry, not
# a file of the release tree), a candidate prepared, then every scheduled job once through
# its real systemd unit, in the order a night would (deploy-ready's promotion, if any,
# first). Writes /srv/out/jobs.json for tests/deploy/test_converge.py.
set -euo pipefail
out=/srv/out
venv=/opt/radio/current/.venv

# A lifecycle command as app/admin/lifecycle_cli.py runs it for the admin page: the service user,
# the app's environment file, the release's interpreter.
as_app() {
  runuser -u radio -- /bin/bash -c \
    'set -a; . /etc/radio/app.env; set +a; cd /opt/radio/current; exec "$@"' bash "$@"
}

as_app "$venv/bin/python" -m lifecycle --json list >"$out/list.json"
# The shipped version 6 (the host numbers its imported versions itself) as the candidate.
candidate="$(python3 -c 'import json, sys
print(next(v["version"] for v in json.load(open(sys.argv[1]))
           if v["tags"].get("shipped_version") == "6"))' "$out/list.json")"
as_app "$venv/bin/python" -m lifecycle --json --by converge prepare "$candidate" >"$out/prepare.json"

: >"$out/units.txt"
for job in deploy-ready data-drift model-drift healthcheck; do
  rc=0
  # A oneshot unit: start returns once the job has run, non-zero when it failed.
  timeout 1800 systemctl start "radio-job@$job.service" || rc=$?
  echo "$job $rc $(systemctl show -P Result "radio-job@$job.service")" >>"$out/units.txt"
  journalctl --no-pager -o cat -u "radio-job@$job.service" >"$out/journal-$job.txt" 2>&1 || true
done

python3 - "$candidate" <<'PY'
import json, pathlib, sys
out = pathlib.Path("/srv/out")
units = {}
for line in (out / "units.txt").read_text().splitlines():
    job, rc, result = line.split()
    units[job] = {"rc": int(rc), "result": result}
events = [json.loads(x) for x in
          pathlib.Path("/var/lib/radio/lifecycle/events.jsonl").read_text().splitlines()]
env = dict(line.split("=", 1) for line in pathlib.Path("/etc/radio/app.env").read_text()
           .splitlines() if line and not line.startswith("#"))
monitoring = pathlib.Path("/var/lib/radio/monitoring")
reports = {kind: json.loads((monitoring / f"latest-{kind}-drift.json").read_text())
           for kind in ("data", "model") if (monitoring / f"latest-{kind}-drift.json").exists()}
listed = json.loads((out / "list.json").read_text())
print(json.dumps({
    "candidate": sys.argv[1],
    "listed_production": [v["version"] for v in listed if "production" in v["aliases"]],
    "app_registry": {k: env.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME",
                                             "RADIO_DRIFT_DATA", "RADIO_DRIFT_REFERENCE")},
    "units": units,
    "events": [e for e in events if e.get("action") == "job"],
    "reports": {k: {"model_version": r.get("model_version"), "drift": r.get("drift"),
                    "notes": r.get("notes")} for k, r in reports.items()},
    "reference": (monitoring / "drift-reference.npz").is_file(),
}, indent=1), file=open(out / "jobs.json", "w"))
PY
cat "$out/units.txt"
