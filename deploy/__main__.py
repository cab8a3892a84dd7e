"""Command line of the deploy helpers, called by deploy.sh.

Exit status: 0 success, 1 the check failed (message on stderr), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from deploy.inventory import InventoryError, load_outputs, parse_outputs, render_inventory
from deploy.net import NotReadyError, smoke_test, wait_for_ssh


def _inventory(args: argparse.Namespace) -> int:
    hosts = parse_outputs(load_outputs(args.outputs), args.model_host)
    text = render_inventory(
        hosts,
        key_file=args.key.resolve(),
        known_hosts=args.known_hosts.resolve(),
        release=args.release,
        src_archive=args.src_archive.resolve() if args.src_archive else None,
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    return 0


def _addresses(args: argparse.Namespace) -> int:
    hosts = parse_outputs(load_outputs(args.outputs), args.model_host)
    print(f"FrontEnd Application: {hosts.app_url}")
    if hosts.model_asg_name:
        count = len(args.model_host)  # the group's servers (the MLflow host is not one)
        print(f"Mlflow app address: {hosts.mlflow_url} (internal load balancer, {count} servers)")
    else:
        print(f"Mlflow app address: http://{hosts.mlflow_public_ip}:{hosts.mlflow_port}")
    return 0


def _url(args: argparse.Namespace) -> int:
    print(parse_outputs(load_outputs(args.outputs), args.model_host).app_url)
    return 0


def _hosts(args: argparse.Namespace) -> int:
    hosts = parse_outputs(load_outputs(args.outputs), args.model_host)
    print(hosts.frontend_public_ip, *hosts.mlflow_public_ips)
    return 0


def _aws_session(args: argparse.Namespace):
    from deploy.credentials import session_for

    return session_for(args.file, args.profile, args.region)


def _model_hosts(args: argparse.Namespace) -> int:
    """Public IPs of the scaled-out model servers; nothing with a single server."""
    from deploy.aws import AwsError, model_hosts

    outputs = load_outputs(args.outputs)
    asg = (outputs.get("model_asg_name") or {}).get("value")
    if asg:
        try:
            print(*model_hosts(_aws_session(args), asg))
        except AwsError as exc:
            print(f"deploy.sh: error: {exc}", file=sys.stderr)
            return 1
    return 0


def _backup(args: argparse.Namespace) -> int:
    from deploy.aws import AwsError, snapshot_volumes

    hosts = parse_outputs(load_outputs(args.outputs), args.model_host)
    if not hosts.data_volumes:
        raise InventoryError("terraform output has no data_volume_ids: deploy first")
    try:
        taken = snapshot_volumes(_aws_session(args), hosts.data_volumes, args.project)
    except AwsError as exc:
        print(f"deploy.sh: error: {exc}", file=sys.stderr)
        return 1
    for role, snapshot in taken.items():
        print(f"{role}: {hosts.data_volumes[role]} -> {snapshot}")
    return 0


def _publish_boot(args: argparse.Namespace) -> int:
    """With several model servers: the release and their variables, for their user data."""
    from deploy.aws import AwsError, publish_release
    from deploy.inventory import boot_vars

    outputs = load_outputs(args.outputs)
    where = (outputs.get("model_server_release") or {}).get("value")
    if not where:
        return 0  # one model server: ./deploy.sh configures it over SSH
    hosts = parse_outputs(outputs, args.model_host)
    variables = boot_vars(hosts, args.release)
    # The registry's admin password and the like (deploy.sh's .deploy/registry.json).
    variables.update(json.loads(args.secrets.read_text()))
    try:
        publish_release(_aws_session(args), where["bucket"], where["release_key"],
                        where["vars_key"], args.archive, variables)
    except AwsError as exc:
        print(f"deploy.sh: error: {exc}", file=sys.stderr)
        return 1
    print(f"release {args.release} published to s3://{where['bucket']}/{where['release_key']}",
          file=sys.stderr)
    return 0


def _credentials(args: argparse.Namespace) -> int:
    # Imported here: the other commands must work where boto3 is not installed.
    from deploy.credentials import CredentialsError, caller_identity

    try:
        identity = caller_identity(args.file, args.profile, args.region)
    except CredentialsError as exc:
        print(f"deploy.sh: error: {exc}", file=sys.stderr)
        return 1
    print(f"AWS account {identity['Account']} as {identity['Arn']}", file=sys.stderr)
    return 0


def _wait_ssh(args: argparse.Namespace) -> int:
    for host in args.hosts:
        took = wait_for_ssh(host, args.port, timeout_s=args.timeout, interval_s=args.interval)
        print(f"SSH on {host} ready after {took:.0f}s", file=sys.stderr)
    return 0


def _smoke(args: argparse.Namespace) -> int:
    body = smoke_test(
        args.url,
        attempts=args.attempts,
        delay_s=args.delay,
        allow_self_signed=args.allow_self_signed,
    )
    print(json.dumps(body, sort_keys=True))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m deploy`` argument parser."""
    parser = argparse.ArgumentParser(prog="python -m deploy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    inv = sub.add_parser("inventory", help="write the Ansible inventory from terraform outputs")
    inv.add_argument("outputs", type=Path, help="saved `terraform output -json`")
    inv.add_argument("--key", type=Path, required=True, help="SSH private key for Ansible")
    inv.add_argument("--known-hosts", type=Path, required=True, help="known_hosts file to use")
    inv.add_argument("--output", type=Path, required=True, help="inventory file to write")
    inv.add_argument("--release", help="commit id being deployed (radio_release)")
    inv.add_argument("--src-archive", type=Path, help="git archive of that commit")
    inv.add_argument("--model-host", action="append", default=[], help="scaled-out server IP")
    inv.set_defaults(func=_inventory)

    for name, func, text in (
        ("addresses", _addresses, "print the frontend and model server addresses"),
        ("hosts", _hosts, "print the public IPs (frontend first) on one line"),
        ("url", _url, "print the application's URL"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("outputs", type=Path, help="saved `terraform output -json`")
        cmd.add_argument("--model-host", action="append", default=[], help="scaled-out server IP")
        cmd.set_defaults(func=func)

    for name, func, text in (
        ("model-hosts", _model_hosts, "print the scaled-out model servers' public IPs"),
        ("backup", _backup, "snapshot the data volumes now"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("outputs", type=Path, help="saved `terraform output -json`")
        cmd.add_argument("--file", type=Path, required=True, help="shared credentials file")
        cmd.add_argument("--profile", required=True)
        cmd.add_argument("--region", default="us-east-1")
        cmd.add_argument("--model-host", action="append", default=[], help=argparse.SUPPRESS)
        cmd.add_argument("--project", default="radio", help="Project tag of the snapshots")
        cmd.set_defaults(func=func)

    pub = sub.add_parser("publish-boot", help="publish the release the Auto Scaling model "
                         "servers install at boot (nothing with one model server)")
    pub.add_argument("outputs", type=Path, help="saved `terraform output -json`")
    pub.add_argument("--archive", type=Path, required=True, help="git archive of the release")
    pub.add_argument("--release", required=True, help="its commit id (radio_release)")
    pub.add_argument("--secrets", type=Path, required=True,
                     help="JSON of the registry's secrets (.deploy/registry.json)")
    pub.add_argument("--file", type=Path, required=True, help="shared credentials file")
    pub.add_argument("--profile", required=True)
    pub.add_argument("--region", default="us-east-1")
    pub.add_argument("--model-host", action="append", default=[], help="scaled-out server IP")
    pub.set_defaults(func=_publish_boot)

    cred = sub.add_parser("credentials", help="check the AWS profile with STS")
    cred.add_argument("--file", type=Path, required=True, help="shared credentials file")
    cred.add_argument("--profile", required=True)
    cred.add_argument("--region", default="us-east-1")
    cred.set_defaults(func=_credentials)

    ssh = sub.add_parser("wait-ssh", help="wait until hosts answer with an SSH banner")
    ssh.add_argument("hosts", nargs="+")
    ssh.add_argument("--port", type=int, default=22)
    ssh.add_argument("--timeout", type=float, default=300.0)
    ssh.add_argument("--interval", type=float, default=5.0)
    ssh.set_defaults(func=_wait_ssh)

    smoke = sub.add_parser("smoke", help="poll a /health URL until it reports ok")
    smoke.add_argument("url")
    smoke.add_argument("--attempts", type=int, default=10)
    smoke.add_argument("--delay", type=float, default=3.0)
    smoke.add_argument(
        "--allow-self-signed",
        action="store_true",
        help="warn about an untrusted certificate instead of failing",
    )
    smoke.set_defaults(func=_smoke)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; failures print ``deploy.sh: error: ...`` and return 1."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (InventoryError, NotReadyError) as exc:
        print(f"deploy.sh: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
