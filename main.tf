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
  # Sorted ids, or the operator's pick: the same subnet on every plan. The
  # instances also ignore later subnet changes (their data volumes live in
  # that subnet's zone and cannot follow).
  subnet_ids = sort(data.aws_subnets.default.ids)
  subnet_id  = var.subnet_id != null ? var.subnet_id : local.subnet_ids[0]
  key_name   = var.existing_key_name != null ? var.existing_key_name : aws_key_pair.deploy[0].key_name

  # One model server: a plain instance, as before. More: an internal load
  # balancer in front of an Auto Scaling group spread over two zones or more.
  scale_out = var.model_server_count > 1

  # The certificate's name: the operator's domain, else a name that resolves to
  # the Elastic IP without any DNS setup (sslip.io maps a-b-c-d.sslip.io to a.b.c.d).
  # Load balancer and database subnets: one per usable zone (at least two).
  model_subnet_ids = local.subnet_ids

  # The registry's backend (one variable): SQLite and artefacts on the MLflow host's data
  # volume, or the managed PostgreSQL + S3 bucket below (mlflow_backends.tf).
  managed_registry = var.registry_backend == "managed"
  # The bucket holds the managed registry's artefacts and, with several model servers, the
  # release their user data installs at boot (./deploy.sh publishes it there).
  bucket = local.managed_registry || local.scale_out

  # S3 needs credentials on the model servers: the Learner Lab's own profile (creating IAM
  # roles is not allowed there).
  instance_profile = local.bucket ? var.instance_profile_name : null

  # Data volumes (GiB) by role. The MLflow host (the registry) exists with any number of
  # model servers, and so does its volume: scaling out never destroys registry data; the
  # Auto Scaling model servers keep no state.
  data_volumes = {
    frontend = var.frontend_data_volume_gb
    mlflow   = var.mlflow_data_volume_gb
  }

  # Model servers' ports that only the frontend's Prometheus may reach.
  metrics_ports = {
    node_exporter = var.node_exporter_port
    model_metrics = var.model_metrics_port
  }

  frontend_hostname = var.domain_name != null ? var.domain_name : "${replace(aws_eip.frontend.public_ip, ".", "-")}.sslip.io"
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

data "aws_subnet" "chosen" {
  id = local.subnet_id
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
# Existing single-server deployments keep their rule and instance (now count-ed).
moved {
  from = aws_vpc_security_group_ingress_rule.mlflow_from_frontend
  to   = aws_vpc_security_group_ingress_rule.mlflow_from_frontend[0]
}

resource "aws_vpc_security_group_ingress_rule" "mlflow_from_frontend" {
  count = local.scale_out ? 0 : 1

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

# Prometheus runs on the frontend (roles/radio_monitoring): it scrapes each model server's
# node exporter and model metrics over the private network. Those ports are opened to the
# frontend's security group only; the app's own metrics never leave the frontend's loopback.
resource "aws_vpc_security_group_ingress_rule" "mlflow_metrics_from_frontend" {
  for_each = local.metrics_ports

  security_group_id            = aws_security_group.mlflow.id
  description                  = "Prometheus on the frontend scrapes ${each.key}"
  ip_protocol                  = "tcp"
  from_port                    = each.value
  to_port                      = each.value
  referenced_security_group_id = aws_security_group.frontend.id

  lifecycle {
    precondition {
      condition     = length(distinct([var.mlflow_port, var.node_exporter_port, var.model_metrics_port])) == 3
      error_message = "mlflow_port, node_exporter_port and model_metrics_port must be three different ports."
    }
  }
}

resource "aws_vpc_security_group_egress_rule" "mlflow_all" {
  security_group_id = aws_security_group.mlflow.id
  description       = "All outbound (packages)"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

# --- Instances ----------------------------------------------------------------

moved {
  from = aws_instance.mlflow
  to   = aws_instance.mlflow[0]
}

# The MLflow host: the registry (and the model server with one server). Always one; the
# index stays for the states made when it was absent with several model servers.
resource "aws_instance" "mlflow" {
  count = 1

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

  iam_instance_profile = local.instance_profile

  lifecycle {
    # Nothing a re-deploy changes may replace a running host behind the
    # operator's back: a newer Ubuntu image, another key pair, a re-chosen
    # subnet. Replace on purpose with `terraform apply -replace=...`.
    ignore_changes = [ami, key_name, subnet_id, associate_public_ip_address]
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
    ignore_changes = [ami, key_name, subnet_id, associate_public_ip_address]
  }
}

# --- A stable address ----------------------------------------------------------

# The Learner Lab stops instances at the end of each session and a restarted
# instance gets a new public IP; the Elastic IP stays, and so do the URL and
# the certificate's name.
resource "aws_eip" "frontend" {
  domain = "vpc"

  tags = {
    Name = "${var.project_name}-frontend"
  }
}

resource "aws_eip_association" "frontend" {
  instance_id   = aws_instance.frontend.id
  allocation_id = aws_eip.frontend.id
}
