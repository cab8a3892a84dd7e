"""Python side of ./deploy.sh: Terraform outputs to an Ansible inventory, an AWS
credentials preflight (STS), and the network waits and smoke test.

Run as ``python -m deploy <command>``; see ``python -m deploy --help``.
"""
