# Sourced by deploy.sh: the registry that lives on the MLflow host (mlflow/tracking_server.sh).
# Its admin password is made once on this machine and kept in .deploy/ (mode 600, never in
# git); after the playbooks, the model versions shipped in mlflow/ that the host lacks are
# copied to it through an SSH tunnel (lifecycle/shipped.py), never touching its aliases.
# Uses deploy.sh's ROOT, STATE_DIR, KEY, OUTPUTS, python_bin, info and die.
# shellcheck shell=bash

# The registry's admin password (the host's tracking server, mlflow/tracking_server.sh): made
# once here, kept in .deploy/ (mode 600, never in git), handed to the model host's
# playbook as a vars file (not on a command line that ps shows).
registry_secrets() {
  mkdir -p "$STATE_DIR"
  "$(python_bin)" -c 'import json, os, secrets, sys
path = sys.argv[1]
if not os.path.isfile(path) or not os.path.getsize(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, json.dumps({"radio_registry_admin_password": secrets.token_urlsafe(24)}).encode())
    os.close(fd)
os.chmod(path, 0o600)' "$REGISTRY_SECRETS"
}

registry_password() {
  "$(python_bin)" -c 'import json, sys; print(json.load(open(sys.argv[1]))["radio_registry_admin_password"])' "$REGISTRY_SECRETS"
}

# An SSH tunnel from a free local port to the host's registry (it listens on the private
# network only). $1: the model host's address. Sets REGISTRY_URL and TUNNEL_PID.
registry_tunnel() {
  local port user
  port="$("$(python_bin)" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  user="$("$(python_bin)" -c 'import json, sys; print(json.load(open(sys.argv[1]))["ssh_user"]["value"])' "$OUTPUTS")"
  ssh -i "$KEY" -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile="$STATE_DIR/known_hosts" \
    -o ExitOnForwardFailure=yes -N -L "$port:127.0.0.1:${RADIO_REGISTRY_PORT:-5000}" "$user@$1" \
    </dev/null >/dev/null &
  TUNNEL_PID=$!
  "$(python_bin)" -c 'import socket, sys, time
for _ in range(60):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close(); sys.exit(0)
    except OSError:
        time.sleep(0.5)
sys.exit(1)' "$port" || die "no SSH tunnel to the registry on $1"
  REGISTRY_URL="http://127.0.0.1:$port"
}

# Versions shipped in mlflow/ that the host's registry lacks are copied to it; the host's
# own versions and aliases (promotions made there) are never touched (lifecycle/shipped.py).
sync_registry() {
  local status=0
  TUNNEL_PID="" REGISTRY_URL=""
  info "Importing shipped model versions the registry on $1 lacks"
  registry_tunnel "$1"
  MLFLOW_TRACKING_USERNAME=admin MLFLOW_TRACKING_PASSWORD="$(registry_password)" \
    MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true \
    "$(python_bin)" -m lifecycle --by deploy.sh import-shipped --from "$ROOT/mlflow" --to "$REGISTRY_URL" >&2 ||
    status=$?
  if [ -n "${TUNNEL_PID:-}" ]; then kill "$TUNNEL_PID" 2>/dev/null || true; fi
  [ "$status" -eq 0 ] || die "importing the shipped registry failed (see above); the host's registry is unchanged where it failed"
}

