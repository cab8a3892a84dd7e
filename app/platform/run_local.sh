#!/usr/bin/env bash
# Run Radio locally: the model server (mlflow/serve.sh) and the web app (gunicorn), both on
# 127.0.0.1. Waits until both are healthy, prints the URL, and stops both on Ctrl-C or if
# either dies. Used by `make run`.
# Environment: PORT [8080] (web app), MODEL_SERVER_PORT [8000], RADIO_START_TIMEOUT_S [300],
# RADIO_VENV [<project>/.venv]; every app setting of the README passes through.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
venv="${RADIO_VENV:-$root/.venv}"
export PATH="$venv/bin:$PATH"
# A patient-data product sends nothing out.
export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true

port="${PORT:-8080}"
model_port="${MODEL_SERVER_PORT:-8000}"
deadline_s="${RADIO_START_TIMEOUT_S:-300}"
export MLFLOW_URL="http://127.0.0.1:$model_port"
logs="$root/.run"
mkdir -p "$logs"

model_pid="" app_pid=""
# True once no process of either server's group is left (tries N times, DELAY s apart).
gone() {  # N DELAY
  local pid alive
  for _ in $(seq "$1"); do
    alive=0
    for pid in $app_pid $model_pid; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && return 0
    sleep "$2"
  done
  return 1
}
stop() {
  # Each server runs in its own session: signal the whole group so mlflow's uvicorn
  # child and gunicorn's workers go too.
  local pid
  for pid in $app_pid $model_pid; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  gone 50 0.2 && return 0
  for pid in $app_pid $model_pid; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  # SIGKILL is asynchronous: reap the servers so their ports are free when this exits.
  for pid in $app_pid $model_pid; do wait "$pid" 2>/dev/null || true; done
  gone 50 0.1 || true
}
trap stop EXIT
trap 'echo; echo "stopping Radio..." >&2; exit 130' INT TERM

# Free means nothing listens there. SO_REUSEADDR, as both servers set it: connections of a
# run stopped a moment ago linger in TIME-WAIT for a minute and must not count as "in use".
port_free() {
  python - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}
for p in "$model_port" "$port"; do
  port_free "$p" || { echo "error: port $p on 127.0.0.1 is already in use" >&2; exit 1; }
done

# 200 from the URL (/health answers 200 only when the model server and storage are ok).
healthy() {
  python - "$1" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        ok = r.status == 200
except Exception:
    ok = False
sys.exit(0 if ok else 1)
PY
}

wait_healthy() {  # name url pid logfile
  local name="$1" url="$2" pid="$3" log="$4" start=$SECONDS
  until healthy "$url"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "error: the $name exited during start-up; last lines of $log:" >&2
      tail -n 20 "$log" >&2
      exit 1
    fi
    if (( SECONDS - start > deadline_s )); then
      echo "error: the $name was not healthy at $url within ${deadline_s}s; see $log" >&2
      exit 1
    fi
    sleep 1
  done
}

# Migrate the database and, on a fresh clone, create the first admin with a one-time
# password (printed below once both servers are up; never a default password).
login_help="$(python -m app.accounts.users bootstrap)"

echo "starting the model server on 127.0.0.1:$model_port (log: $logs/model-server.log)" >&2
MODEL_SERVER_HOST=127.0.0.1 MODEL_SERVER_PORT="$model_port" \
  setsid bash mlflow/serve.sh >"$logs/model-server.log" 2>&1 &
model_pid=$!
echo "starting the web app on 127.0.0.1:$port (log: $logs/app.log)" >&2
HOST=127.0.0.1 PORT="$port" setsid gunicorn -c app/platform/gunicorn.conf.py app.platform.wsgi:app \
  >"$logs/app.log" 2>&1 &
app_pid=$!

wait_healthy "model server" "http://127.0.0.1:$model_port/ping" "$model_pid" \
  "$logs/model-server.log"
wait_healthy "web app" "http://127.0.0.1:$port/health" "$app_pid" "$logs/app.log"
echo
echo "Radio is running: http://127.0.0.1:$port/   (API docs: http://127.0.0.1:$port/docs)"
echo "$login_help"
echo "Press Ctrl-C to stop."

# Returns as soon as either server exits; then the EXIT trap stops the other.
set +e
wait -n "$model_pid" "$app_pid"
status=$?
echo "error: a server stopped unexpectedly (exit $status); stopping Radio" >&2
exit 1
