"""A private nginx serving one of the roles' sites, as the hosts' nginx does (no test logic
here)."""

from __future__ import annotations

import getpass
import shutil
import subprocess
from pathlib import Path

import pytest

NGINX_MAIN = """\
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
worker_processes 1;
events {{ worker_connections 128; }}
http {{
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {site};
}}
"""


def nginx_binary() -> str:
    """nginx's path, or skip the test."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                      else None)
    if found is None:
        pytest.skip("nginx is not installed (.ci/run installs nginx-light)")
    return found


def private_nginx(prefix: Path, site: Path, check: bool = True) -> list[str]:
    """nginx's main configuration in ``prefix`` around ``site``, checked with ``nginx -t``
    unless ``check`` is false (a site whose files exist elsewhere: another mount namespace);
    the command to start it (add ``-s reload`` or ``-s quit`` to signal it)."""
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    main = NGINX_MAIN.format(prefix=prefix, site=site)
    if getpass.getuser() == "root":  # else its workers would run as nobody
        main = f"user {getpass.getuser()};\n" + main
    conf.write_text(main)
    base = [nginx_binary(), "-p", str(prefix), "-c", str(conf)]
    if check:
        subprocess.run([*base, "-t"], check=True, capture_output=True)
    return base
