"""EC2 and Auto Scaling calls of deploy.sh, against moto (never the real AWS)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import boto3
import pytest
from deploy_helpers import FIXTURES, ROOT, run
from moto import mock_aws

from deploy.aws import AwsError, model_hosts, snapshot_volumes

REGION = "us-east-1"
LAB = """\
[awslearnerlab]
aws_access_key_id = ASIATESTTESTTESTTEST
aws_secret_access_key = secret
"""


@pytest.fixture()
def session(monkeypatch: pytest.MonkeyPatch) -> boto3.Session:
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    with mock_aws():
        yield boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )


def make_group(session: boto3.Session, count: int) -> str:
    ec2 = session.client("ec2")
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
    ec2.create_launch_template(
        LaunchTemplateName="radio-model",
        LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.medium"},
    )
    session.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="radio-model",
        LaunchTemplate={"LaunchTemplateName": "radio-model", "Version": "$Latest"},
        MinSize=count,
        MaxSize=count,
        DesiredCapacity=count,
        VPCZoneIdentifier=",".join(subnets),
    )
    return "radio-model"


def test_model_hosts_lists_the_groups_running_servers(session: boto3.Session) -> None:
    make_group(session, 3)
    # An instance outside the group must not be configured as a model server.
    ec2 = session.client("ec2")
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.small")
    hosts = model_hosts(session, "radio-model")
    members = [
        i["InstanceId"]
        for i in session.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"][
            0
        ]["Instances"]
    ]
    reservations = ec2.describe_instances(InstanceIds=members)["Reservations"]
    expected = {i["PublicIpAddress"] for r in reservations for i in r["Instances"]}
    assert len(hosts) == 3 and set(hosts) == expected
    assert hosts == sorted(hosts, key=lambda ip: tuple(map(int, ip.split("."))))


def test_model_hosts_skips_stopped_servers(session: boto3.Session) -> None:
    make_group(session, 2)
    members = [
        i["InstanceId"]
        for i in session.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"][
            0
        ]["Instances"]
    ]
    session.client("ec2").stop_instances(InstanceIds=members[:1])
    assert len(model_hosts(session, "radio-model")) == 1


def test_model_hosts_of_an_unknown_group_is_empty(session: boto3.Session) -> None:
    assert model_hosts(session, "nope") == []


def test_snapshot_volumes_tags_each_snapshot(session: boto3.Session) -> None:
    ec2 = session.client("ec2")
    volumes = {
        role: ec2.create_volume(AvailabilityZone="us-east-1a", Size=1, Encrypted=True)["VolumeId"]
        for role in ("frontend", "mlflow")
    }
    taken = snapshot_volumes(session, volumes, "radio")
    assert set(taken) == {"frontend", "mlflow"}
    for role, snap_id in taken.items():
        (snap,) = ec2.describe_snapshots(SnapshotIds=[snap_id])["Snapshots"]
        assert snap["VolumeId"] == volumes[role]
        tags = {t["Key"]: t["Value"] for t in snap["Tags"]}
        assert tags["Project"] == "radio" and tags["Role"] == role


def test_snapshot_of_a_missing_volume_names_it(session: boto3.Session) -> None:
    with pytest.raises(AwsError, match="cannot snapshot the frontend volume vol-0000"):
        snapshot_volumes(session, {"frontend": "vol-00000000000000000"})


def test_backup_command_reads_the_outputs(tmp_path: Path) -> None:
    """python -m deploy backup: volumes from the outputs, credentials from the lab file."""
    code = f"""
import json, sys
from moto import mock_aws
import boto3
with mock_aws():
    ec2 = boto3.client("ec2", region_name="{REGION}")
    vol = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    outputs = json.load(open(sys.argv[1]))
    outputs["data_volume_ids"]["value"] = {{"frontend": vol}}
    json.dump(outputs, open(sys.argv[2], "w"))
    from deploy.__main__ import main
    rc = main(["backup", sys.argv[2], "--file", sys.argv[3], "--profile", "awslearnerlab"])
    print("SNAPSHOTS", len(ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]))
    sys.exit(rc)
"""
    cred = tmp_path / "_credentials"
    cred.write_text(LAB)
    result = run(
        [sys.executable, "-c", code, str(FIXTURES / "terraform-output.json"),
         str(tmp_path / "out.json"), str(cred)],
        cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "frontend: vol-" in result.stdout and " -> snap-" in result.stdout
    assert "SNAPSHOTS 1" in result.stdout
    assert json.loads((tmp_path / "out.json").read_text())["ssh_user"]["value"] == "ubuntu"
