"""EC2 and Auto Scaling calls of deploy.sh, against moto (never the real AWS)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import boto3
import pytest
from deploy_helpers import FIXTURES, ROOT, run
from moto import mock_aws

from deploy.aws import AwsError, model_hosts, publish_release, snapshot_volumes

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


def test_publish_release_puts_both_objects_encrypted(session: boto3.Session,
                                                     tmp_path: Path) -> None:
    s3 = session.client("s3")
    s3.create_bucket(Bucket="radio-mlflow-abc")
    archive = tmp_path / "radio-src.tar.gz"
    archive.write_bytes(b"release bytes")
    publish_release(session, "radio-mlflow-abc", "releases/radio-src.tar.gz",
                    "releases/model-server-vars.json", archive,
                    {"radio_release": "0123456789ab", "radio_registry_admin_password": "pw"})
    got = s3.get_object(Bucket="radio-mlflow-abc", Key="releases/radio-src.tar.gz")
    assert got["Body"].read() == b"release bytes" and got["ServerSideEncryption"] == "AES256"
    got = s3.get_object(Bucket="radio-mlflow-abc", Key="releases/model-server-vars.json")
    assert got["ServerSideEncryption"] == "AES256"
    assert json.loads(got["Body"].read()) == {"radio_release": "0123456789ab",
                                              "radio_registry_admin_password": "pw"}
    with pytest.raises(AwsError, match="cannot publish the release to s3://no-such-bucket"):
        publish_release(session, "no-such-bucket", "r", "v", archive, {})


def test_publish_boot_command_sends_the_model_hosts_variables(tmp_path: Path) -> None:
    """python -m deploy publish-boot: the bucket and keys from the outputs, the variables the
    inventory gives every host plus the registry's secrets; nothing with one model server."""
    code = f"""
import json, sys
from moto import mock_aws
import boto3
with mock_aws():
    s3 = boto3.client("s3", region_name="{REGION}")
    s3.create_bucket(Bucket="radio-mlflow-abc")
    outputs = json.load(open(sys.argv[1]))
    from deploy.__main__ import main
    args = ["--archive", sys.argv[3], "--release", "0123456789ab", "--secrets", sys.argv[4],
            "--file", sys.argv[5], "--profile", "awslearnerlab"]
    json.dump(outputs, open(sys.argv[2], "w"))
    assert main(["publish-boot", sys.argv[2], *args]) == 0  # one server: nothing
    print("OBJECTS", s3.list_objects_v2(Bucket="radio-mlflow-abc").get("KeyCount"))
    outputs["model_asg_name"]["value"] = "radio-model"
    outputs["model_server_release"]["value"] = {{"bucket": "radio-mlflow-abc",
        "release_key": "releases/radio-src.tar.gz",
        "vars_key": "releases/model-server-vars.json"}}
    json.dump(outputs, open(sys.argv[2], "w"))
    rc = main(["publish-boot", sys.argv[2], *args, "--model-host", "198.51.100.31"])
    body = s3.get_object(Bucket="radio-mlflow-abc", Key="releases/model-server-vars.json")
    print("VARS", body["Body"].read().decode())
    sys.exit(rc)
"""
    cred = tmp_path / "_credentials"
    cred.write_text(LAB)
    archive = tmp_path / "radio-src.tar.gz"
    archive.write_bytes(b"release")
    secrets = tmp_path / "registry.json"
    secrets.write_text('{"radio_registry_admin_password": "pw"}')
    result = run(
        [sys.executable, "-c", code, str(FIXTURES / "terraform-output.json"),
         str(tmp_path / "out.json"), str(archive), str(secrets), str(cred)],
        cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OBJECTS 0" in result.stdout
    variables = json.loads(result.stdout.split("VARS ", 1)[1])
    # The servers follow the MLflow host's registry (its private address, port 5000).
    assert variables == {
        "radio_mlflow_port": "8000", "radio_mlflow_url": "http://172.31.20.5:8000",
        "radio_public_hostname": "198-51-100-10.sslip.io",
        "radio_node_exporter_port": "9100", "radio_mlflow_metrics_port": "9102",
        "radio_release": "0123456789ab", "radio_registry_admin_password": "pw",
        "radio_registry_url": "http://172.31.20.5:5000",
        "radio_registry_private_url": "http://172.31.20.5:5000"}
