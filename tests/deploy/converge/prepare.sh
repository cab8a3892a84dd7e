#!/usr/bin/env bash
# Prepares what tests/deploy/test_converge.py needs (root, Debian, network to the
# Debian archive and PyPI; a few minutes, ≈ 700 MB):
#   DIR/rootfs  a Debian bookworm tree with systemd and the packages the roles
#               install (apt inside the test container has no network)
#   DIR/wheels  the wheels of every constraints file, ansible-core and build tools
#   bash tests/deploy/converge/prepare.sh [DIR]      (DIR: /var/tmp/radio-converge)
# Then: RADIO_CONVERGE_DIR=DIR pytest -m slow tests/deploy/test_converge.py
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
dir="${1:-/var/tmp/radio-converge}"
mkdir -p "$dir"
if ! command -v debootstrap >/dev/null || ! command -v systemd-nspawn >/dev/null; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap systemd-container
fi
# The packages the roles install; a tree prepared before one was added gets it now.
packages="python3-apt python3.11 python3.11-venv nginx certbot openssl ca-certificates"
packages="$packages iproute2 procps util-linux prometheus prometheus-node-exporter"
packages="$packages prometheus-alertmanager"
if [ ! -x "$dir/rootfs/usr/sbin/nginx" ] || [ ! -x "$dir/rootfs/usr/bin/promtool" ] ||
  [ ! -x "$dir/rootfs/usr/bin/prometheus-node-exporter" ] ||
  [ ! -x "$dir/rootfs/usr/bin/amtool" ]; then
  [ -x "$dir/rootfs/usr/bin/python3" ] ||
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,python3 \
      bookworm "$dir/rootfs" http://deb.debian.org/debian
  # apt, not debootstrap, for the rest: debootstrap cannot resolve virtual
  # packages (python3.11-venv needs python3.11-distutils). python3-apt is for
  # Ansible's apt module; the others are what the roles install.
  cp /etc/resolv.conf "$dir/rootfs/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' >"$dir/rootfs/usr/sbin/policy-rc.d"
  chmod 755 "$dir/rootfs/usr/sbin/policy-rc.d"
  mount -t proc proc "$dir/rootfs/proc"
  trap 'umount "$dir/rootfs/proc"; rm -f "$dir/rootfs/usr/sbin/policy-rc.d"' EXIT
  chroot "$dir/rootfs" /bin/sh -ec "export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $packages"
fi
python="${PYTHON:-python3.11}"
# One download per constraints file: the hosts' locks may pin a shared package apart
# (the registry host's MLflow server needs an older gunicorn than the frontend).
for lock in serve web registry; do
  "$python" -m pip download -q --disable-pip-version-check -d "$dir/wheels" \
    -r "$repo/deploy/constraints/$lock.txt"
done
"$python" -m pip download -q --disable-pip-version-check -d "$dir/wheels" \
  "setuptools>=68" wheel "pip>=24" "ansible-core>=2.17,<2.20"
echo "ready: RADIO_CONVERGE_DIR=$dir" >&2
