#!/usr/bin/env bash
# The registry that lives on the MLflow host: MLflow's tracking server with its
# authentication app (HTTP basic auth; no anonymous access), a database backend and an
# artefact store. Used the same way by the systemd unit (radio-registry) and the tests.
# Configuration (environment, defaults in brackets):
#   RADIO_REGISTRY_DIR [/var/lib/radio/registry]  the data volume's registry folder
#   RADIO_REGISTRY_HOST [127.0.0.1]   RADIO_REGISTRY_PORT [5000]   RADIO_REGISTRY_WORKERS [1]
#   RADIO_REGISTRY_BACKEND [sqlite:///$RADIO_REGISTRY_DIR/mlflow.db]  or postgresql://...
#   RADIO_REGISTRY_ARTIFACTS [$RADIO_REGISTRY_DIR/artifacts]          or s3://bucket/prefix
#                                     (boto3 with the instance profile's credentials)
#   RADIO_REGISTRY_DB_SECRET          ARN of the Secrets Manager secret holding the
#                                     database's password (RDS keeps it there): read at
#                                     every start into PGPASSWORD, never written to disk
#   MLFLOW_AUTH_ADMIN_PASSWORD        the admin's password, used once when the user store
#                                     is created (required then; deploy.sh generates it)
#   RADIO_VENV [<project>/.venv, if present]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${RADIO_VENV:-$root/.venv}"
if [ -x "$venv/bin/python" ]; then export PATH="$venv/bin:$PATH"; fi
export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true

dir="${RADIO_REGISTRY_DIR:-/var/lib/radio/registry}"
mkdir -p "$dir"
chmod 700 "$dir"
backend="${RADIO_REGISTRY_BACKEND:-sqlite:///$dir/mlflow.db}"
artifacts="${RADIO_REGISTRY_ARTIFACTS:-$dir/artifacts}"
host="${RADIO_REGISTRY_HOST:-127.0.0.1}"
port="${RADIO_REGISTRY_PORT:-5000}"

# The authentication app's settings: its user store beside the registry, and nobody may
# read or write anything they were not granted (MLflow's default is READ for everyone).
auth="$dir/basic_auth.ini"
umask 077
cat >"$auth" <<INI
[mlflow]
default_permission = NO_PERMISSIONS
database_uri = sqlite:///$dir/basic_auth.db
admin_username = ${RADIO_REGISTRY_ADMIN:-admin}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
grant_default_workspace_access = false
INI
export MLFLOW_AUTH_CONFIG_PATH="$auth"
# The auth app's CSRF key: generated once, kept beside the user store (never in git).
if [ -z "${MLFLOW_FLASK_SERVER_SECRET_KEY:-}" ]; then
  [ -s "$dir/secret_key" ] || python -c 'import secrets; print(secrets.token_hex(32))' >"$dir/secret_key"
  MLFLOW_FLASK_SERVER_SECRET_KEY="$(cat "$dir/secret_key")"
  export MLFLOW_FLASK_SERVER_SECRET_KEY
fi
if [ ! -s "$dir/basic_auth.db" ] && [ -z "${MLFLOW_AUTH_ADMIN_PASSWORD:-}" ]; then
  echo "error: MLFLOW_AUTH_ADMIN_PASSWORD must be set the first time the registry starts" >&2
  exit 1
fi

if [ -n "${RADIO_REGISTRY_DB_SECRET:-}" ]; then
  # libpq (psycopg) reads PGPASSWORD; the backend URI names no password.
  PGPASSWORD="$(python "$root/mlflow/db_password.py")"
  export PGPASSWORD
fi

echo "registry on $host:$port: backend ${backend%%:*}, artefacts $artifacts" >&2
exec mlflow server --app-name basic-auth --backend-store-uri "$backend" \
  --artifacts-destination "$artifacts" --serve-artifacts \
  --host "$host" --port "$port" --workers "${RADIO_REGISTRY_WORKERS:-1}"
