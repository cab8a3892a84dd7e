"""AWS credentials preflight, against moto's STS (never the real AWS)."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.stub import Stubber
from moto import mock_aws

from deploy import credentials
from deploy.__main__ import main
from deploy.credentials import CredentialsError, caller_identity, check_profile

LAB = """\
[awslearnerlab]
aws_access_key_id = ASIATESTTESTTESTTEST
aws_secret_access_key = secret
aws_session_token = token
"""


@pytest.fixture(autouse=True)
def no_ambient_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Neither the machine's ~/.aws nor AWS_* variables may leak into these tests."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture()
def cred_file(tmp_path: Path) -> Path:
    path = tmp_path / ".aws" / "_credentials"
    path.parent.mkdir()
    path.write_text(LAB)
    return path


def test_profile_present(cred_file: Path) -> None:
    check_profile(cred_file, "awslearnerlab")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(
        CredentialsError, match=r"_credentials not found: copy .*_credentials.example"
    ):
        check_profile(tmp_path / ".aws" / "_credentials", "awslearnerlab")


def test_missing_profile_lists_the_ones_found(cred_file: Path) -> None:
    cred_file.write_text(LAB.replace("[awslearnerlab]", "[default]"))
    with pytest.raises(
        CredentialsError, match=r"no \[awslearnerlab\] profile \(profiles found: \[default\]\)"
    ):
        check_profile(cred_file, "awslearnerlab")


def test_missing_secret(cred_file: Path) -> None:
    cred_file.write_text(LAB.replace("aws_secret_access_key = secret\n", ""))
    with pytest.raises(CredentialsError, match=r"\[awslearnerlab\] lacks aws_secret_access_key"):
        check_profile(cred_file, "awslearnerlab")


def test_caller_identity_with_moto(cred_file: Path) -> None:
    with mock_aws():
        identity = caller_identity(cred_file, "awslearnerlab", "us-east-1")
    assert identity["Account"] == "123456789012"
    assert identity["Arn"].startswith("arn:aws:sts::123456789012:")


def test_reads_only_the_given_file(cred_file: Path, tmp_path: Path) -> None:
    """~/.aws/credentials must not supply a profile the project's file lacks."""
    home_aws = tmp_path / "home" / ".aws"
    home_aws.mkdir(parents=True)
    (home_aws / "credentials").write_text(LAB.replace("awslearnerlab", "other"))
    with mock_aws(), pytest.raises(CredentialsError, match=r"no \[other\] profile"):
        caller_identity(cred_file, "other", "us-east-1")


@pytest.mark.parametrize(
    ("code", "advice"),
    [
        ("ExpiredToken", "session token has expired"),
        ("InvalidClientTokenId", "AWS does not know this access key"),
        ("SignatureDoesNotMatch", "secret access key is wrong"),
    ],
)
def test_sts_refusals_are_explained(
    cred_file: Path, monkeypatch: pytest.MonkeyPatch, code: str, advice: str
) -> None:
    session = credentials.session_for(cred_file, "awslearnerlab", "us-east-1")
    client = session.client("sts")
    stubber = Stubber(client)
    stubber.add_client_error("get_caller_identity", service_error_code=code, http_status_code=403)
    stubber.activate()

    class StubbedSession:
        def client(self, name: str):
            assert name == "sts"
            return client

    monkeypatch.setattr(credentials, "session_for", lambda *args: StubbedSession())
    with pytest.raises(
        CredentialsError,
        match=rf"AWS refused profile \[awslearnerlab\] \({code}\): (the )?{advice}",
    ):
        caller_identity(cred_file, "awslearnerlab", "us-east-1")


def test_unreachable_sts_is_reported(cred_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Port 9 on loopback refuses at once: no traffic leaves the machine."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(CredentialsError, match="cannot check the credentials with AWS STS"):
        caller_identity(cred_file, "awslearnerlab", "us-east-1")


def test_cli_success_and_failure(cred_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with mock_aws():
        assert main(["credentials", "--file", str(cred_file), "--profile", "awslearnerlab"]) == 0
    assert "AWS account 123456789012" in capsys.readouterr().err
    assert main(["credentials", "--file", str(cred_file), "--profile", "nope"]) == 1
    assert "deploy.sh: error:" in capsys.readouterr().err
