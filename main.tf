# Radio on AWS: a public frontend host (nginx -> gunicorn -> Flask) and a
# private-by-default MLflow model server host, in the account's default VPC.
# Provisioning ends at "SSH reachable"; app.playbook.yml and
# mlflow.playbook.yml configure the hosts (deploy.sh runs all of it).

provider "aws" {
  region                   = var.region
  profile                  = var.aws_profile
  shared_credentials_files = [var.credentials_file]

  default_tags {
    tags = local.tags
  }
}

locals {
  tags = merge(var.tags, {
    Project   = var.project_name
    ManagedBy = "terraform"
  })

  instance_types = distinct([var.frontend_instance_type, var.mlflow_instance_type])

  # t3 types are missing from some zones (us-east-1e): keep only the zones
  # that offer every instance type we launch.
  usable_zones = sort([
    for zone in distinct(data.aws_ec2_instance_type_offerings.chosen.locations) : zone
    if length([
      for i, location in data.aws_ec2_instance_type_offerings.chosen.locations : location
      if location == zone
    ]) == length(local.instance_types)
  ])

  # Both hosts share one subnet so frontend -> model traffic stays in one zone.
  subnet_id = sort(data.aws_subnets.default.ids)[0]
  key_name  = var.existing_key_name != null ? var.existing_key_name : aws_key_pair.deploy[0].key_name
}

# Jammy rather than Noble: Radio requires Python 3.11, which 22.04 ships in
# universe (python3.11, python3.11-venv) while 24.04 would need a PPA.
data "aws_ami" "ubuntu" {
  most_recent = true
  owners      = ["099720109477"] # Canonical

  filter {
    name   = "name"
    values = ["ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*"]
  }

  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }

  filter {
    name   = "architecture"
    values = ["x86_64"]
  }
}

data "aws_vpc" "default" {
  default = true
}

data "aws_ec2_instance_type_offerings" "chosen" {
  location_type = "availability-zone"

  filter {
    name   = "instance-type"
    values = local.instance_types
  }
}

data "aws_subnets" "default" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default.id]
  }

  filter {
    name   = "default-for-az"
    values = ["true"]
  }

  filter {
    name   = "availability-zone"
    values = local.usable_zones
  }
}

resource "aws_key_pair" "deploy" {
  count = var.existing_key_name == null ? 1 : 0

  key_name   = "${var.project_name}-deploy"
  public_key = var.ssh_public_key

  lifecycle {
    precondition {
      condition     = var.ssh_public_key != null
      error_message = "Set ssh_public_key (deploy.sh derives it from .aws/key.pem) or existing_key_name."
    }
  }
}

# --- Security groups: least privilege --------------------------------------

resource "aws_security_group" "frontend" {
  name        = "${var.project_name}-frontend"
  description = "Radio frontend: HTTP(S) from the allowed networks, SSH from the admin network"
  vpc_id      = data.aws_vpc.default.id
}

resource "aws_vpc_security_group_ingress_rule" "frontend_http" {
  for_each = toset(var.http_ingress_cidrs)

  security_group_id = aws_security_group.frontend.id
  description       = "HTTP to nginx"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = each.value
}

# Nothing listens on 443 until an operator adds a certificate (that needs a
# domain name); the port is open so adding one needs no infrastructure change.
resource "aws_vpc_security_group_ingress_rule" "frontend_https" {
  for_each = toset(var.http_ingress_cidrs)

  security_group_id = aws_security_group.frontend.id
  description       = "HTTPS to nginx"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "frontend_ssh" {
  security_group_id = aws_security_group.frontend.id
  description       = "SSH from the admin network only"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = var.admin_cidr
}

# Outbound is open: hosts fetch apt and PyPI packages during configuration.
resource "aws_vpc_security_group_egress_rule" "frontend_all" {
  security_group_id = aws_security_group.frontend.id
  description       = "All outbound (packages, model server)"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_security_group" "mlflow" {
  name        = "${var.project_name}-mlflow"
  description = "Radio model server: scoring port from the frontend only, SSH from the admin network"
  vpc_id      = data.aws_vpc.default.id
}

# The reference design opened the scoring port to 0.0.0.0/0. Radio does not:
# /invocations takes patient images, has no authentication and is costly to
# run, so only the frontend (which validates and rate-limits uploads) may call it.
resource "aws_vpc_security_group_ingress_rule" "mlflow_from_frontend" {
  security_group_id            = aws_security_group.mlflow.id
  description                  = "Model server from the frontend only"
  ip_protocol                  = "tcp"
  from_port                    = var.mlflow_port
  to_port                      = var.mlflow_port
  referenced_security_group_id = aws_security_group.frontend.id
}

resource "aws_vpc_security_group_ingress_rule" "mlflow_public" {
  for_each = toset(var.mlflow_public_ingress_cidrs)

  security_group_id = aws_security_group.mlflow.id
  description       = "Model server, direct access requested by the operator"
  ip_protocol       = "tcp"
  from_port         = var.mlflow_port
  to_port           = var.mlflow_port
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "mlflow_ssh" {
  security_group_id = aws_security_group.mlflow.id
  description       = "SSH from the admin network only"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = var.admin_cidr
}

resource "aws_vpc_security_group_egress_rule" "mlflow_all" {
  security_group_id = aws_security_group.mlflow.id
  description       = "All outbound (packages)"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

# --- Instances ----------------------------------------------------------------

resource "aws_instance" "mlflow" {
  ami                         = data.aws_ami.ubuntu.id
  instance_type               = var.mlflow_instance_type
  subnet_id                   = local.subnet_id
  vpc_security_group_ids      = [aws_security_group.mlflow.id]
  key_name                    = local.key_name
  associate_public_ip_address = true

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.mlflow_root_volume_gb
    encrypted             = true
    delete_on_termination = true
  }

  metadata_options {
    http_tokens   = "required" # IMDSv2 only
    http_endpoint = "enabled"
  }

  tags = {
    Name = "${var.project_name}-mlflow"
    Role = "mlflow"
  }

  lifecycle {
    # A newer Ubuntu image must not replace a running host on re-deploy.
    ignore_changes = [ami]
  }
}

resource "aws_instance" "frontend" {
  ami                         = data.aws_ami.ubuntu.id
  instance_type               = var.frontend_instance_type
  subnet_id                   = local.subnet_id
  vpc_security_group_ids      = [aws_security_group.frontend.id]
  key_name                    = local.key_name
  associate_public_ip_address = true

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.frontend_root_volume_gb
    encrypted             = true
    delete_on_termination = true
  }

  metadata_options {
    http_tokens   = "required"
    http_endpoint = "enabled"
  }

  tags = {
    Name = "${var.project_name}-frontend"
    Role = "frontend"
  }

  lifecycle {
    ignore_changes = [ami]
  }
}
