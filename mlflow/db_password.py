"""Print the registry database's password, read from the Secrets Manager secret RDS keeps it
in (``RADIO_REGISTRY_DB_SECRET``: the secret's ARN, Terraform's
``mlflow_database_secret_arn``), with the instance profile's credentials.

Run by mlflow/tracking_server.sh at every start, so the password is never written to disk
or to git, and a start after RDS rotated it reads the new one. The region is the secret's
own (from its ARN): an EC2 host has no default region configured.
"""

from __future__ import annotations

import json
import os
import sys


class SecretError(RuntimeError):
    """The secret cannot be read or holds no password."""


def region_of(arn: str) -> str:
    """``arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME`` -> REGION."""
    parts = arn.split(":")
    if len(parts) < 7 or parts[:3] != ["arn", "aws", "secretsmanager"] or not parts[3]:
        raise SecretError(f"not a Secrets Manager secret ARN: {arn!r}")
    return parts[3]


def password(arn: str, client=None) -> str:
    """The ``password`` field of the secret's JSON value (RDS stores username and password)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    client = client or boto3.client("secretsmanager", region_name=region_of(arn))
    try:
        value = client.get_secret_value(SecretId=arn)["SecretString"]
    except (BotoCoreError, ClientError, KeyError) as exc:
        raise SecretError(f"cannot read the registry database's secret: {exc}") from exc
    try:
        secret = json.loads(value)["password"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SecretError("the registry database's secret holds no JSON password") from exc
    if not isinstance(secret, str) or not secret:
        raise SecretError("the registry database's secret holds an empty password")
    return secret


def main() -> int:
    arn = os.environ.get("RADIO_REGISTRY_DB_SECRET", "")
    if not arn:
        print("error: RADIO_REGISTRY_DB_SECRET is not set", file=sys.stderr)
        return 2
    try:
        print(password(arn))
    except SecretError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
