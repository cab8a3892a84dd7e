"""The few AWS calls deploy.sh needs beyond Terraform: the scaled-out model servers
(their addresses are the Auto Scaling group's, not Terraform's), the release they install
at boot (S3), and on-demand snapshots of the data volumes (./deploy.sh backup)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError


class AwsError(Exception):
    """An EC2 or Auto Scaling call failed; the message says which and why."""


def model_hosts(session: Any, asg_name: str) -> list[str]:
    """Public IPv4 addresses of the group's running instances, sorted for a stable inventory.

    Only instances the group counts as InService (or Pending, still booting) and
    EC2 reports running: a terminating one must not be configured.
    """
    try:
        groups = session.client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[asg_name]
        )["AutoScalingGroups"]
        ids = [
            i["InstanceId"]
            for g in groups
            for i in g.get("Instances", [])
            if i.get("LifecycleState") in ("InService", "Pending")
        ]
        if not ids:
            return []
        pages = (
            session.client("ec2")
            .get_paginator("describe_instances")
            .paginate(
                InstanceIds=ids, Filters=[{"Name": "instance-state-name", "Values": ["running"]}]
            )
        )
        addresses = [
            inst["PublicIpAddress"]
            for page in pages
            for res in page["Reservations"]
            for inst in res["Instances"]
            if inst.get("PublicIpAddress")
        ]
    except (BotoCoreError, ClientError) as exc:
        raise AwsError(f"cannot list the model servers of {asg_name}: {exc}") from None
    return sorted(addresses, key=lambda ip: tuple(int(part) for part in ip.split(".")))


def snapshot_volumes(
    session: Any, volumes: Mapping[str, str], project: str = "radio", now: dt.datetime | None = None
) -> dict[str, str]:
    """Snapshot each data volume ({role: volume id}); return {role: snapshot id}.

    EBS snapshots are crash-consistent: the services keep running, and SQLite's
    journal makes its file recoverable (see the README for a quiet-time backup).
    """
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H%MZ")
    ec2 = session.client("ec2")
    taken = {}
    for role, volume_id in sorted(volumes.items()):
        try:
            snap = ec2.create_snapshot(
                VolumeId=volume_id,
                Description=f"{project} {role} data, ./deploy.sh backup {stamp}",
                TagSpecifications=[
                    {
                        "ResourceType": "snapshot",
                        "Tags": [
                            {"Key": "Project", "Value": project},
                            {"Key": "Role", "Value": role},
                            {"Key": "Name", "Value": f"{project}-{role}-data-{stamp}"},
                        ],
                    }
                ],
            )
        except (BotoCoreError, ClientError) as exc:
            raise AwsError(f"cannot snapshot the {role} volume {volume_id}: {exc}") from None
        taken[role] = snap["SnapshotId"]
    return taken


def publish_release(session: Any, bucket: str, release_key: str, vars_key: str,
                    archive: Path, variables: Mapping[str, str]) -> None:
    """Put the release archive and the model hosts' Ansible variables where the Auto Scaling
    model servers' user data fetches them at boot (deploy/model-server-boot.sh.tftpl).

    The bucket is private and versioned; each object is also encrypted at rest (the
    variables hold the registry's password).
    """
    s3 = session.client("s3")
    try:
        s3.upload_file(str(archive), bucket, release_key,
                       ExtraArgs={"ServerSideEncryption": "AES256"})
        s3.put_object(Bucket=bucket, Key=vars_key, Body=json.dumps(dict(variables)).encode(),
                      ServerSideEncryption="AES256", ContentType="application/json")
    except (BotoCoreError, ClientError, S3UploadFailedError, OSError) as exc:
        raise AwsError(f"cannot publish the release to s3://{bucket}: {exc}") from None
