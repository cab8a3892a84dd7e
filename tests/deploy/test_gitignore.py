"""Secrets and deployment state never reach git."""

from __future__ import annotations

import shutil

import pytest
from deploy_helpers import ROOT, run

IGNORED = (
    ".aws/_credentials",
    ".aws/key.pem",
    ".aws/config",
    "terraform.tfstate",
    "terraform.tfstate.backup",
    ".terraform/providers/x",
    ".deploy/inventory.ini",
    ".deploy/terraform.tfvars.json",
    ".deploy/radio-src.tar.gz",
    "inventory.ini",
    # The Learner Lab's key download, wherever an operator saves it.
    "labsuser.pem",
    "keys/other.pem",
    "labsuser.ppk",
)
KEPT = (
    ".aws/README.md",
    ".aws/_credentials.example",
    "main.tf",
    "deploy.sh",
    "roles/radio_web/tasks/main.yml",
)


def check_ignore(path: str) -> bool:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout, or git is not installed")
    # --no-index: judge the rules alone, whether or not the file is tracked.
    result = run([git, "check-ignore", "-q", "--no-index", path], cwd=ROOT)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode == 0


@pytest.mark.parametrize("path", IGNORED)
def test_secret_or_state_is_ignored(path: str) -> None:
    assert check_ignore(path), f"{path} is not git-ignored"


@pytest.mark.parametrize("path", KEPT)
def test_shared_file_is_not_ignored(path: str) -> None:
    assert not check_ignore(path), f"{path} is git-ignored"
