# Plan/apply of the configuration against a mocked AWS provider (no account, no
# network): checks the zone choice, the key pair switch and the security rules
# with Terraform's own evaluation. Run by tests/deploy/test_terraform.py.

mock_provider "aws" {
  override_data {
    target = data.aws_ami.ubuntu
    values = {
      id = "ami-mocked"
    }
  }

  # us-east-1e lacks t3.medium and us-east-1b lacks it too in this fixture:
  # only us-east-1a offers both instance types.
  override_data {
    target = data.aws_ec2_instance_type_offerings.chosen
    values = {
      locations      = ["us-east-1a", "us-east-1a", "us-east-1b", "us-east-1e"]
      instance_types = ["t3.small", "t3.medium", "t3.small", "t3.small"]
    }
  }

  override_data {
    target = data.aws_subnets.default
    values = {
      ids = ["subnet-bbbb", "subnet-aaaa"]
    }
  }
}

variables {
  admin_cidr     = "203.0.113.7/32"
  ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMockedKeyForTerraformTestsOnly radio"
}

run "defaults" {
  command = apply

  assert {
    condition     = local.usable_zones == tolist(["us-east-1a"])
    error_message = "Only zones offering every instance type may be used."
  }

  assert {
    condition     = aws_instance.frontend.subnet_id == "subnet-aaaa" && aws_instance.mlflow.subnet_id == "subnet-aaaa"
    error_message = "Both hosts share the first subnet."
  }

  assert {
    condition     = aws_instance.mlflow.instance_type == "t3.medium" && aws_instance.frontend.ami == "ami-mocked"
    error_message = "The MLflow host is a t3.medium on the looked-up AMI."
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.mlflow_from_frontend.referenced_security_group_id == aws_security_group.frontend.id
    error_message = "Port 8000 is open to the frontend's security group."
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.mlflow_from_frontend.from_port == 8000 && length(aws_vpc_security_group_ingress_rule.mlflow_public) == 0
    error_message = "Nothing else reaches port 8000 by default."
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.frontend_ssh.cidr_ipv4 == "203.0.113.7/32" && aws_vpc_security_group_ingress_rule.mlflow_ssh.cidr_ipv4 == "203.0.113.7/32"
    error_message = "SSH comes from admin_cidr only."
  }

  assert {
    condition     = length(aws_key_pair.deploy) == 1 && aws_instance.frontend.key_name == aws_key_pair.deploy[0].key_name
    error_message = "The key pair is imported from ssh_public_key."
  }

  assert {
    condition     = output.mlflow_private_url == "http://${aws_instance.mlflow.private_ip}:8000"
    error_message = "The frontend's MLFLOW_URL uses the private address."
  }
}

run "existing_key_pair" {
  command = plan

  variables {
    ssh_public_key    = null
    existing_key_name = "vockey"
  }

  assert {
    condition     = length(aws_key_pair.deploy) == 0 && aws_instance.mlflow.key_name == "vockey"
    error_message = "An existing key pair is used as is."
  }
}

run "operator_opens_the_model_port" {
  command = plan

  variables {
    mlflow_public_ingress_cidrs = ["198.51.100.0/24"]
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.mlflow_public["198.51.100.0/24"].cidr_ipv4 == "198.51.100.0/24"
    error_message = "mlflow_public_ingress_cidrs opens port 8000 to exactly those networks."
  }
}

run "ssh_never_open_to_the_world" {
  command = plan

  variables {
    admin_cidr = "0.0.0.0/0"
  }

  expect_failures = [var.admin_cidr]
}

run "a_key_is_required" {
  command = plan

  variables {
    ssh_public_key = null
  }

  expect_failures = [aws_key_pair.deploy]
}

run "ssh_never_open_to_half_the_internet" {
  command = plan

  variables {
    admin_cidr = "0.0.0.0/1"
  }

  expect_failures = [var.admin_cidr]
}

run "ssh_from_a_slash_16_is_the_widest_allowed" {
  command = plan

  variables {
    admin_cidr = "198.51.0.0/16"
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.frontend_ssh.cidr_ipv4 == "198.51.0.0/16"
    error_message = "A /16 is accepted."
  }
}

run "model_port_never_open_to_the_world" {
  command = plan

  variables {
    mlflow_public_ingress_cidrs = ["0.0.0.0/0"]
  }

  expect_failures = [var.mlflow_public_ingress_cidrs]
}

run "model_port_not_open_to_the_world_in_halves" {
  command = plan

  variables {
    mlflow_public_ingress_cidrs = ["0.0.0.0/1", "128.0.0.0/1"]
  }

  expect_failures = [var.mlflow_public_ingress_cidrs]
}
