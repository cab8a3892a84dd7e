"""AWS credentials preflight: the profile is in the file, and STS accepts it."""

from __future__ import annotations

import configparser
from pathlib import Path
from typing import Any

import boto3
import botocore.session
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

REQUIRED_KEYS = ("aws_access_key_id", "aws_secret_access_key")

# What an operator should do about each STS refusal; Learner Lab sessions last
# four hours, so expiry is the usual one.
_ADVICE = {
    "ExpiredToken": "the session token has expired: start the lab again and paste the new "
    "'AWS Details' credentials",
    "InvalidClientTokenId": "AWS does not know this access key: paste the current credentials",
    "SignatureDoesNotMatch": "the secret access key is wrong: paste the current credentials",
    "AccessDenied": "these credentials may not call sts:GetCallerIdentity",
}


class CredentialsError(Exception):
    """The credentials are missing or refused; the message says what to do."""


def check_profile(path: Path, profile: str) -> None:
    """Check that ``path`` has ``[profile]`` with an access key and secret, without AWS."""
    if not path.is_file():
        raise CredentialsError(f"{path} not found: copy {path.parent}/_credentials.example")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path)
    except configparser.Error as exc:
        raise CredentialsError(f"{path} is not an INI file: {exc}") from None
    if not parser.has_section(profile):
        found = ", ".join(f"[{name}]" for name in parser.sections()) or "none"
        raise CredentialsError(f"{path} has no [{profile}] profile (profiles found: {found})")
    missing = [key for key in REQUIRED_KEYS if not parser.get(profile, key, fallback="").strip()]
    if missing:
        raise CredentialsError(f"{path} [{profile}] lacks {', '.join(missing)}")


def session_for(path: Path, profile: str, region: str) -> boto3.Session:
    """A boto3 session that reads only ``path`` (never ~/.aws/credentials) for ``profile``."""
    core = botocore.session.Session()
    core.set_config_variable("credentials_file", str(path))
    # A missing ~/.aws/config must not matter, and a present one must not add profiles.
    core.set_config_variable("config_file", str(path.with_name("_config")))
    return boto3.Session(botocore_session=core, profile_name=profile, region_name=region)


def caller_identity(path: Path, profile: str, region: str) -> dict[str, Any]:
    """Return STS GetCallerIdentity for the profile, or raise CredentialsError saying why not."""
    check_profile(path, profile)
    try:
        sts = session_for(path, profile, region).client("sts")
        answer = sts.get_caller_identity()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        advice = _ADVICE.get(code, exc.response.get("Error", {}).get("Message", str(exc)))
        raise CredentialsError(f"AWS refused profile [{profile}] ({code}): {advice}") from None
    except NoCredentialsError:
        raise CredentialsError(f"profile [{profile}] in {path} has no usable credentials") from None
    except BotoCoreError as exc:
        raise CredentialsError(f"cannot check the credentials with AWS STS: {exc}") from None
    return {key: answer[key] for key in ("Account", "Arn", "UserId")}
