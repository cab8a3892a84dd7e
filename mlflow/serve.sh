#!/usr/bin/env bash
# Serve the registry's production model on /invocations (MLflow scoring server).
# Used the same way by `make run`, the tests and the systemd unit on the MLflow host.
# Configuration (environment, defaults in brackets):
#   MODEL_SERVER_HOST [127.0.0.1]  MODEL_SERVER_PORT [8000]  MODEL_SERVER_WORKERS [1]
#   RADIO_MODEL_NAME [radio-cxr]  RADIO_MODEL_ALIAS [production]
#   MLFLOW_TRACKING_URI [sqlite:///mlflow/mlflow.db, relative to the project root]
#   RADIO_VENV [<project>/.venv, if present]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The shipped registry stores artefact paths relative to the project root.
cd "$root"
venv="${RADIO_VENV:-$root/.venv}"
if [ -x "$venv/bin/python" ]; then export PATH="$venv/bin:$PATH"; fi

export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-sqlite:///mlflow/mlflow.db}"
export RADIO_MODEL_NAME="${RADIO_MODEL_NAME:-radio-cxr}"
export RADIO_MODEL_ALIAS="${RADIO_MODEL_ALIAS:-production}"
# A patient-data product sends nothing out.
export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true
host="${MODEL_SERVER_HOST:-127.0.0.1}"
port="${MODEL_SERVER_PORT:-8000}"
workers="${MODEL_SERVER_WORKERS:-1}"

# Pin the alias to a version once, so every answer names the version that produced it.
RADIO_MODEL_VERSION="$(python -m training.registry resolve "$RADIO_MODEL_NAME" "$RADIO_MODEL_ALIAS")"
export RADIO_MODEL_VERSION
echo "serving models:/$RADIO_MODEL_NAME@$RADIO_MODEL_ALIAS (version $RADIO_MODEL_VERSION) on $host:$port" >&2
exec mlflow models serve -m "models:/$RADIO_MODEL_NAME/$RADIO_MODEL_VERSION" \
  --host "$host" --port "$port" --workers "$workers" --env-manager local
