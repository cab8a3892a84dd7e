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

  # S3 artefacts need credentials on the model servers: the Learner Lab's own
  # profile (creating IAM roles is not allowed there).
  instance_profile = var.mlflow_artifacts_s3 ? var.instance_profile_name : null

  # Data volumes (GiB) by role; the scale-out model servers keep no state.
  data_volumes = merge(
    { frontend = var.frontend_data_volume_gb },
    local.scale_out ? {} : { mlflow = var.mlflow_data_volume_gb },
  )

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

resource "aws_instance" "mlflow" {
  count = local.scale_out ? 0 : 1

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

# --- Data that outlives the hosts ----------------------------------------------

# Uploads and the database (frontend), the registry and artefacts (model host)
# live on their own encrypted volumes, mounted at /var/lib/radio by the
# playbooks. Replacing an instance re-attaches the same volume; deleting a
# volume (./deploy.sh destroy) first takes a final snapshot.
resource "aws_ebs_volume" "data" {
  for_each = local.data_volumes

  availability_zone = data.aws_subnet.chosen.availability_zone
  size              = each.value
  type              = "gp3"
  encrypted         = true
  final_snapshot    = true

  tags = {
    Name   = "${var.project_name}-${each.key}-data"
    Role   = each.key
    Backup = var.project_name
  }

  lifecycle {
    # The zone is fixed once the data exists; a different subnet choice must
    # not replace (and so empty) the volume.
    ignore_changes = [availability_zone]
  }
}

resource "aws_volume_attachment" "data" {
  for_each = local.data_volumes

  device_name = var.data_device_name
  volume_id   = aws_ebs_volume.data[each.key].id
  instance_id = each.key == "frontend" ? aws_instance.frontend.id : aws_instance.mlflow[0].id
  # Stop the services' writes cleanly: detaching a mounted volume would fail.
  stop_instance_before_detaching = true
}

# Daily snapshots of both data volumes, kept for snapshot_retain_days. Data
# Lifecycle Manager needs a role it can assume; the Learner Lab forbids creating
# one, so the lab's own LabRole is looked up (snapshot_role_name = null turns
# the schedule off; ./deploy.sh backup snapshots on demand either way).
data "aws_iam_role" "snapshots" {
  count = var.snapshot_role_name != null ? 1 : 0
  name  = var.snapshot_role_name
}

resource "aws_dlm_lifecycle_policy" "data" {
  count = var.snapshot_role_name != null ? 1 : 0

  description        = "${var.project_name} data volumes daily"
  execution_role_arn = data.aws_iam_role.snapshots[0].arn
  state              = "ENABLED"

  policy_details {
    resource_types = ["VOLUME"]
    target_tags = {
      Backup = var.project_name
    }

    schedule {
      name      = "daily"
      copy_tags = true

      create_rule {
        interval      = 24
        interval_unit = "HOURS"
        times         = ["03:00"]
      }

      retain_rule {
        count = var.snapshot_retain_days
      }
    }
  }
}

# --- Scale-out model tier (model_server_count > 1) -------------------------------

resource "aws_security_group" "model_lb" {
  count = local.scale_out ? 1 : 0

  name        = "${var.project_name}-model-lb"
  description = "Radio internal model load balancer: scoring port from the frontend only"
  vpc_id      = data.aws_vpc.default.id
}

resource "aws_vpc_security_group_ingress_rule" "model_lb_from_frontend" {
  count = local.scale_out ? 1 : 0

  security_group_id            = aws_security_group.model_lb[0].id
  description                  = "Model load balancer from the frontend only"
  ip_protocol                  = "tcp"
  from_port                    = var.mlflow_port
  to_port                      = var.mlflow_port
  referenced_security_group_id = aws_security_group.frontend.id
}

resource "aws_vpc_security_group_egress_rule" "model_lb_to_servers" {
  count = local.scale_out ? 1 : 0

  security_group_id            = aws_security_group.model_lb[0].id
  description                  = "Load balancer to the model servers"
  ip_protocol                  = "tcp"
  from_port                    = var.mlflow_port
  to_port                      = var.mlflow_port
  referenced_security_group_id = aws_security_group.mlflow.id
}

resource "aws_vpc_security_group_ingress_rule" "mlflow_from_lb" {
  count = local.scale_out ? 1 : 0

  security_group_id            = aws_security_group.mlflow.id
  description                  = "Model servers from their load balancer only"
  ip_protocol                  = "tcp"
  from_port                    = var.mlflow_port
  to_port                      = var.mlflow_port
  referenced_security_group_id = aws_security_group.model_lb[0].id
}

# Internal: the load balancer has no public address; only the frontend calls it.
resource "aws_lb" "model" {
  count = local.scale_out ? 1 : 0

  name               = "${var.project_name}-model"
  internal           = true
  load_balancer_type = "application"
  security_groups    = [aws_security_group.model_lb[0].id]
  subnets            = local.model_subnet_ids
  # Model answers on a t3.medium can take seconds; the app's own timeout rules.
  idle_timeout               = 60
  drop_invalid_header_fields = true
}

resource "aws_lb_target_group" "model" {
  count = local.scale_out ? 1 : 0

  name                 = "${var.project_name}-model"
  port                 = var.mlflow_port
  protocol             = "HTTP"
  vpc_id               = data.aws_vpc.default.id
  deregistration_delay = 30

  health_check {
    path                = "/ping"
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }
}

resource "aws_lb_listener" "model" {
  count = local.scale_out ? 1 : 0

  load_balancer_arn = aws_lb.model[0].arn
  port              = var.mlflow_port
  protocol          = "HTTP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.model[0].arn
  }
}

resource "aws_launch_template" "model" {
  count = local.scale_out ? 1 : 0

  name_prefix            = "${var.project_name}-model-"
  image_id               = data.aws_ami.ubuntu.id
  instance_type          = var.mlflow_instance_type
  key_name               = local.key_name
  update_default_version = true

  network_interfaces {
    # A public address for Ansible over SSH and for package downloads (the
    # default VPC has no NAT); the security group keeps 8000 internal.
    associate_public_ip_address = true
    security_groups             = [aws_security_group.mlflow.id]
  }

  block_device_mappings {
    device_name = "/dev/sda1"

    ebs {
      volume_type           = "gp3"
      volume_size           = var.mlflow_root_volume_gb
      encrypted             = true
      delete_on_termination = true
    }
  }

  metadata_options {
    http_tokens   = "required"
    http_endpoint = "enabled"
  }

  dynamic "iam_instance_profile" {
    for_each = local.instance_profile != null ? [local.instance_profile] : []
    content {
      name = iam_instance_profile.value
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags = merge(local.tags, {
      Name = "${var.project_name}-mlflow"
      Role = "mlflow"
    })
  }

  lifecycle {
    ignore_changes = [image_id]
  }
}

resource "aws_autoscaling_group" "model" {
  count = local.scale_out ? 1 : 0

  name                      = "${var.project_name}-model"
  min_size                  = var.model_server_count
  max_size                  = var.model_server_count
  desired_capacity          = var.model_server_count
  vpc_zone_identifier       = local.model_subnet_ids
  target_group_arns         = [aws_lb_target_group.model[0].arn]
  health_check_type         = "ELB"
  health_check_grace_period = 900 # first install and model load (see the README)
  # A new server is configured by the next ./deploy.sh; the load balancer
  # routes around it until its /ping answers.
  wait_for_capacity_timeout = "10m"

  launch_template {
    id      = aws_launch_template.model[0].id
    version = "$Latest"
  }

  lifecycle {
    precondition {
      condition     = length(local.model_subnet_ids) >= 2
      error_message = "model_server_count > 1 needs default subnets in at least two zones that offer the instance types."
    }
  }

  tag {
    key                 = "Project"
    value               = var.project_name
    propagate_at_launch = true
  }
}

# --- Optional MLflow backends: RDS PostgreSQL and S3 -------------------------------

resource "aws_s3_bucket" "artifacts" {
  count = var.mlflow_artifacts_s3 ? 1 : 0

  bucket_prefix = "${var.project_name}-mlflow-"
  force_destroy = false
}

resource "aws_s3_bucket_public_access_block" "artifacts" {
  count = var.mlflow_artifacts_s3 ? 1 : 0

  bucket                  = aws_s3_bucket.artifacts[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "artifacts" {
  count = var.mlflow_artifacts_s3 ? 1 : 0

  bucket = aws_s3_bucket.artifacts[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "artifacts" {
  count = var.mlflow_artifacts_s3 ? 1 : 0

  bucket = aws_s3_bucket.artifacts[0].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_security_group" "rds" {
  count = var.mlflow_backend_rds ? 1 : 0

  name        = "${var.project_name}-mlflow-db"
  description = "Radio MLflow tracking database: PostgreSQL from the model servers only"
  vpc_id      = data.aws_vpc.default.id
}

resource "aws_vpc_security_group_ingress_rule" "rds_from_mlflow" {
  count = var.mlflow_backend_rds ? 1 : 0

  security_group_id            = aws_security_group.rds[0].id
  description                  = "PostgreSQL from the model servers"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.mlflow.id
}

resource "aws_db_subnet_group" "mlflow" {
  count = var.mlflow_backend_rds ? 1 : 0

  name       = "${var.project_name}-mlflow"
  subnet_ids = local.model_subnet_ids
}

resource "aws_db_instance" "mlflow" {
  count = var.mlflow_backend_rds ? 1 : 0

  identifier             = "${var.project_name}-mlflow"
  engine                 = "postgres"
  engine_version         = "16"
  instance_class         = var.rds_instance_class
  allocated_storage      = 20
  storage_type           = "gp3"
  storage_encrypted      = true
  db_name                = "mlflow"
  username               = "mlflow"
  db_subnet_group_name   = aws_db_subnet_group.mlflow[0].name
  vpc_security_group_ids = [aws_security_group.rds[0].id]
  publicly_accessible    = false
  # The password is made and kept by RDS in Secrets Manager: never in the
  # Terraform state, the variables or git.
  manage_master_user_password = true
  backup_retention_period     = 7
  skip_final_snapshot         = false
  final_snapshot_identifier   = "${var.project_name}-mlflow-final"
  deletion_protection         = false # the Learner Lab budget needs destroy to work
}
