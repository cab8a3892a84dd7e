#!/usr/bin/env bash
# Serve the registry's production model on /invocations (MLflow's scoring server).
# Used the same way by `make run`, the tests, the bench and the systemd unit on the MLflow host.
# Configuration (environment, defaults in brackets):
#   MODEL_SERVER_HOST [127.0.0.1]   MODEL_SERVER_PORT [8000]   MODEL_SERVER_WORKERS [1]
#   MODEL_SERVER_TIMEOUT_S [60]     per-request timeout of the scoring server
#   MODEL_SERVER_LAUNCH [lean]      lean: MLflow's scoring server app under uvicorn, started
#                                   directly; mlflow: `mlflow models serve` (same app, plus a
#                                   ~260 MB parent process that only waits; see README)
#   RADIO_ORT_THREADS [2]           ONNX Runtime threads per request (2: best p50 on 2 vCPUs)
#   RADIO_ORT_SPIN [0]              1: ONNX Runtime's idle threads spin (its default; serving/
#                                   pyfunc.py says what it costs; versions before 6 always spin)
#   RADIO_MODEL_NAME [radio-cxr]    RADIO_MODEL_ALIAS [production]
#   RADIO_SERVE_VERSION             serve this version, not the alias's (the blue/green
#                                   switch, lifecycle/follow.py, pins each server this way)
#   RADIO_REGISTRY_ROOT [project root] folder the registry's relative artefact paths start from
#   MLFLOW_TRACKING_URI [sqlite:///mlflow/mlflow.db, relative to the project root]
#   MLFLOW_REGISTRY_URI [MLFLOW_TRACKING_URI]
#   RADIO_VENV [<project>/.venv, if present]
#   MODEL_SERVER_METRICS_HOST [127.0.0.1]  MODEL_SERVER_METRICS_PORT [9102] Prometheus
#                                   metrics (monitoring/model_host.py; lean launch, one
#                                   worker); 0 = MLflow's app without metrics
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The shipped registry stores artefact paths relative to the project root.
cd "${RADIO_REGISTRY_ROOT:-$root}"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
venv="${RADIO_VENV:-$root/.venv}"
if [ -x "$venv/bin/python" ]; then export PATH="$venv/bin:$PATH"; fi

export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-sqlite:///mlflow/mlflow.db}"
# The registry is the tracking store unless told otherwise.
export MLFLOW_REGISTRY_URI="${MLFLOW_REGISTRY_URI:-$MLFLOW_TRACKING_URI}"
export RADIO_MODEL_NAME="${RADIO_MODEL_NAME:-radio-cxr}"
export RADIO_MODEL_ALIAS="${RADIO_MODEL_ALIAS:-production}"
# A patient-data product sends nothing out.
export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true
host="${MODEL_SERVER_HOST:-127.0.0.1}"
port="${MODEL_SERVER_PORT:-8000}"
# One worker: a second copy of the model would only compete for the same 2 cores.
workers="${MODEL_SERVER_WORKERS:-1}"
export RADIO_ORT_THREADS="${RADIO_ORT_THREADS:-2}"
timeout_s="${MODEL_SERVER_TIMEOUT_S:-60}"

# Pin the alias to a version once, so every answer names the version that produced it.
# A command substitution, not `< <(...)`: bash waits for it, so no unreaped child is left
# under the scoring server that `exec` puts in this process's place.
pin=()
if [ -n "${RADIO_SERVE_VERSION:-}" ]; then pin=(--version "$RADIO_SERVE_VERSION"); fi
resolved="$(python -m serving.served_model resolve "$RADIO_MODEL_NAME" "$RADIO_MODEL_ALIAS" --path \
  "${pin[@]}")" || resolved=""
IFS=$'\t' read -r RADIO_MODEL_VERSION model_dir <<<"$resolved" || true
if [ -z "${RADIO_MODEL_VERSION:-}" ] || [ -z "${model_dir:-}" ]; then
  echo "error: cannot resolve models:/$RADIO_MODEL_NAME@$RADIO_MODEL_ALIAS in $MLFLOW_TRACKING_URI" >&2
  exit 1
fi
export RADIO_MODEL_VERSION
echo "serving models:/$RADIO_MODEL_NAME@$RADIO_MODEL_ALIAS (version $RADIO_MODEL_VERSION) on $host:$port" >&2

if [ "${MODEL_SERVER_LAUNCH:-lean}" = "mlflow" ]; then
  exec mlflow models serve -m "models:/$RADIO_MODEL_NAME/$RADIO_MODEL_VERSION" \
    --host "$host" --port "$port" --workers "$workers" --timeout "$timeout_s" --env-manager local
fi
# What `mlflow models serve --env-manager local` runs, without its waiting parent process.
export __pyfunc_model_path__="file://$model_dir"
export MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT="$timeout_s"
# MLflow's app inside a metrics middleware (monitoring/model_host.py), unless metrics are
# off, several workers would each open the metrics port, or the tree has no monitoring/
# (a copy of mlflow/ and serving/ alone still serves).
app_module="monitoring.model_host:app"
if [ "${MODEL_SERVER_METRICS_PORT:-9102}" = "0" ] || [ "$workers" != "1" ] ||
  [ ! -f "$root/monitoring/model_host.py" ]; then
  app_module="mlflow.pyfunc.scoring_server.app:app"
fi
exec uvicorn --host "$host" --port "$port" --workers "$workers" "$app_module"
