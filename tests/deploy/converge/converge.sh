#!/usr/bin/env bash
# Applies one Radio playbook for real, twice, in a throwaway Debian system booted
# with systemd-nspawn (systemd as PID 1, so the roles' units really start), then
# checks that the second run changed nothing and that the service answers.
#
#   converge.sh PLAYBOOK ROOTFS WHEELS OUT [DATA]
#     PLAYBOOK  mlflow.playbook.yml or app.playbook.yml, or "jobs": both on one system (the
#               model host's once, then the frontend's once, the frontend's registry being
#               the model host's), then every scheduled job once through its systemd unit
#               (jobs.sh), then the frontend's again (converge-3.log: must change nothing)
#     ROOTFS    a Debian bookworm tree (debootstrap; see tests/deploy/test_converge.py),
#               used read-only: the container runs on a copy (--ephemeral)
#     WHEELS    a directory of wheels: pip inside the container installs from it only
#     OUT       where the two runs' logs go (converge-1.log, converge-2.log)
#     DATA      optional: a folder of data sources the deployment places (radio_data_archive,
#               as deploy.sh packs RADIO_DATA)
#
# --register=no --keep-unit: no machined or system bus is needed on the host.
# The container has its own network namespace with loopback only (--private-network):
# nothing it starts is reachable from outside, and it cannot reach the internet, so
# apt finds its packages already in ROOTFS and pip finds them in WHEELS.
set -euo pipefail

playbook="$1" rootfs="$2" wheels="$3" out="$4" data="${5:-}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
name="radio-converge-$$"
mkdir -p "$out"
release="$(git -C "$repo" rev-parse --short=12 HEAD)"
git -C "$repo" archive --format=tar.gz -o "$out/release.tar.gz" HEAD
data_vars=()
if [ -n "$data" ]; then
  tar -C "$data" -czf "$out/data.tar.gz" .
  data_vars=(-e radio_data_archive=/srv/out/data.tar.gz)
fi

# A loop device plays the EBS data volume: the role formats it (once), mounts it
# on /var/lib/radio and records it in fstab, as on EC2 (where the device is found
# by volume id under /dev/disk/by-id).
# 1 GiB, sparse: above the free-space floor of /health (RADIO_MIN_FREE_MB, 500 MB).
truncate -s 1G "$out/data.img"
loop="$(losetup --find --show "$out/data.img")"

systemd-nspawn --quiet --boot --ephemeral --private-network --register=no --keep-unit \
  --bind="$loop" --property="DeviceAllow=$loop rw" \
  --machine="$name" --directory="$rootfs" \
  --bind-ro="$repo:/srv/repo" --bind-ro="$wheels:/srv/wheels" --bind="$out:/srv/out" \
  >"$out/console.log" 2>&1 &
nspawn=$!
stub=""
cleanup() {
  # The stub model server (app playbook) first: the container waits for it to halt.
  [ -z "$stub" ] || { pkill -KILL -P "$stub" 2>/dev/null; kill -KILL "$stub" 2>/dev/null; } || true
  kill "$nspawn" 2>/dev/null || true
  wait "$nspawn" 2>/dev/null || true
  losetup --detach "$loop" 2>/dev/null || true
}
trap cleanup EXIT

# The container's PID 1 is nspawn's child once it has become systemd: nspawn's first
# child is a short-lived intermediate process (it forks PID 1 and exits), and entering
# its namespaces races with its exit ("cannot open /proc/N/ns/ipc").
leader=""
for _ in $(seq 1 300); do
  child="$(awk '{print $1}' "/proc/$nspawn/task/$nspawn/children" 2>/dev/null)" || true
  if [ -n "$child" ] && [ "$(cat "/proc/$child/comm" 2>/dev/null)" = systemd ]; then
    leader="$child"
    break
  fi
  sleep 0.2
done
[ -n "$leader" ] || { echo "converge: the container did not start" >&2; cat "$out/console.log" >&2; exit 1; }
# A clean environment: the host's PIP_*, VIRTUAL_ENV and the like stay outside.
inside() {
  nsenter --target "$leader" --mount --uts --ipc --net --pid -- env -i HOME=/root LANG=C.UTF-8 \
    PATH=/opt/ansible/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

for _ in $(seq 1 300); do
  state="$(inside systemctl is-system-running 2>/dev/null || true)"
  case "$state" in running | degraded) break ;; esac
  sleep 0.2
done
echo "converge: container systemd is $state" >&2
# Still "starting" after a minute on a loaded machine is survivable (the roles wait for
# their own units); no answer at all is not.
case "$state" in
  "" | offline) echo "converge: the container's systemd never came up" >&2; tail -40 "$out/console.log" >&2; exit 1 ;;
esac

inside /bin/sh -ec '
  # pip inside the container installs from the wheel directory only.
  printf "[global]\nno-index = true\nfind-links = /srv/wheels\n" >/etc/pip.conf
  # cloud-init is EC2 first-boot machinery, absent here: the role only waits for it.
  printf "#!/bin/sh\nexit 0\n" >/usr/local/bin/cloud-init && chmod 755 /usr/local/bin/cloud-init
  python3 -m venv /opt/ansible
  /opt/ansible/bin/pip install -q ansible-core
  printf "[frontend]\nradio-frontend ansible_connection=local\n[mlflow]\nradio-mlflow ansible_connection=local\n" >/srv/out/inventory.ini
'

if [ "$playbook" = app.playbook.yml ]; then
  # The frontend's /health is "ok" only when the model server answers /ping: a stub plays
  # it on the container's loopback (the model host converges in its own test).
  inside /usr/bin/python3 -c 'import http.server as h
class Ping(h.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/ping" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
h.ThreadingHTTPServer(("127.0.0.1", 8000), Ping).serve_forever()' </dev/null >/dev/null 2>&1 &
  stub=$!
fi

# apply PLAYBOOK LOG: one run of a playbook as deploy.sh runs it.
apply() {
  inside env ANSIBLE_ROLES_PATH=/srv/repo/roles ANSIBLE_NOCOLOR=1 ANSIBLE_LOCAL_TEMP=/tmp/al \
    ANSIBLE_FORCE_COLOR=0 ansible-playbook -i /srv/out/inventory.ini "/srv/repo/$1" \
    -e radio_release="$release" -e radio_src_archive=/srv/out/release.tar.gz \
    -e ansible_python_interpreter=/usr/bin/python3 \
    -e radio_mlflow_private_ip=127.0.0.1 \
    -e radio_registry_admin_password=converge-only-password \
    -e radio_common_apt_cache_valid_s=31536000 \
    -e radio_data_volume_id=vol-0converge -e radio_common_data_device="$loop" \
    -e radio_grafana=false ${data_vars[@]+"${data_vars[@]}"} \
    >"$2" 2>&1 || { tail -40 "$2" >&2; exit 1; }
  grep -E '^(radio-frontend|radio-mlflow) +:' "$2" >&2
}

if [ "$playbook" = jobs ]; then
  apply mlflow.playbook.yml "$out/converge-1.log"
  apply app.playbook.yml "$out/converge-2.log"
  inside /bin/bash /srv/repo/tests/deploy/converge/jobs.sh >"$out/jobs.log" 2>&1 ||
    { tail -60 "$out/jobs.log" >&2; exit 1; }
  # Once more, with the data placed and the jobs run: nothing may change.
  apply app.playbook.yml "$out/converge-3.log"
  exit 0
fi

for round in 1 2; do
  apply "$playbook" "$out/converge-$round.log"
done

# The data volume is mounted where the services write.
inside findmnt --noheadings --output SOURCE,FSTYPE --mountpoint /var/lib/radio | tee "$out/mount.txt"

# The services answer inside the container.
if [ "$playbook" = mlflow.playbook.yml ]; then
  inside /usr/bin/python3 -c 'import urllib.request
get = lambda url: urllib.request.urlopen(url, timeout=10)
print("ping", get("http://127.0.0.1:8000/ping").status)
# What the frontend'"'"'s Prometheus scrapes here: the model server'"'"'s metrics, the node exporter.
print("model metrics", "radio_model_info{" in get("http://127.0.0.1:9102/metrics").read().decode())
print("node exporter", "node_cpu_seconds_total" in get("http://127.0.0.1:9100/metrics").read().decode())' | tee "$out/answer.txt"
else
  inside /usr/bin/python3 -c 'import json, ssl, urllib.request
ctx = ssl._create_unverified_context()
print("health", json.load(urllib.request.urlopen("https://127.0.0.1/health", context=ctx, timeout=10))["status"])
import http.client
conn = http.client.HTTPConnection("127.0.0.1", 80, timeout=10)
conn.request("GET", "/x")
print("redirect", conn.getresponse().status)
# Prometheus (Grafana is off here: its repository is out of reach) scrapes the app'"'"'s
# metrics (the gunicorn master) and the node exporter: wait for a healthy scrape of each
# (the targets of the configuration now loaded, not series left by the package'"'"'s default).
import time
def targets():
    url = "http://127.0.0.1:9090/api/v1/targets"
    return json.load(urllib.request.urlopen(url, timeout=10))["data"]["activeTargets"]
for _ in range(60):
    health = {t["labels"]["job"]: t["health"] for t in targets()}
    if health.get("radio-app") == "up" and health.get("node") == "up":
        break
    time.sleep(1)
print("prometheus app", health.get("radio-app"), "node", health.get("node"))
# The alert rules it loaded (roles/radio_monitoring/files/radio-alerts.yml).
rules = json.load(urllib.request.urlopen("http://127.0.0.1:9090/api/v1/rules", timeout=10))
print("alert rules", sum(len(g["rules"]) for g in rules["data"]["groups"] if g["name"] == "radio"))
# Why a target is down, for the failure message.
for t in targets():
    print("target", t["labels"]["job"], t["scrapeUrl"], t["health"], t["lastError"])' | tee "$out/answer.txt"
fi
