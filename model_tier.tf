# Radio on AWS: the scale-out model tier (internal load balancer + Auto Scaling group).
# (Split from main.tf by concern; variables in variables.tf, outputs in outputs.tf.)

# --- Scale-out model tier (model_server_count > 1) -------------------------------

locals {
  # Where ./deploy.sh publishes the release the servers install at boot (the bucket's
  # releases/ prefix; private, encrypted, versioned: mlflow_backends.tf).
  boot_release_key = "releases/radio-src.tar.gz"
  boot_vars_key    = "releases/model-server-vars.json"
  # The registry's port on the MLflow host (roles/radio_model: radio_model_registry_port).
  registry_port = 5000
}

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

# The model servers follow production in the MLflow host's registry (basic auth; it
# listens on the private network with several servers): its port admits their security
# group only, which the MLflow host shares.
resource "aws_vpc_security_group_ingress_rule" "registry_from_model_servers" {
  count = local.scale_out ? 1 : 0

  security_group_id            = aws_security_group.mlflow.id
  description                  = "Registry on the MLflow host from the model servers only"
  ip_protocol                  = "tcp"
  from_port                    = local.registry_port
  to_port                      = local.registry_port
  referenced_security_group_id = aws_security_group.mlflow.id
}

# The frontend's admin page, retraining and drift jobs use the same registry (basic auth,
# over the private network): with any number of model servers.
resource "aws_vpc_security_group_ingress_rule" "registry_from_frontend" {
  security_group_id            = aws_security_group.mlflow.id
  description                  = "Registry on the MLflow host from the frontend only"
  ip_protocol                  = "tcp"
  from_port                    = local.registry_port
  to_port                      = local.registry_port
  referenced_security_group_id = aws_security_group.frontend.id
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

  # A new or replacement instance configures itself from the release ./deploy.sh last
  # published to the bucket (deploy/model-server-boot.sh.tftpl): no operator needed.
  user_data = base64encode(templatefile("${path.module}/deploy/model-server-boot.sh.tftpl", {
    bucket      = aws_s3_bucket.artifacts[0].bucket
    region      = var.region
    release_key = local.boot_release_key
    vars_key    = local.boot_vars_key
  }))

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

  name                = "${var.project_name}-model"
  min_size            = var.model_server_count
  max_size            = var.model_server_count
  desired_capacity    = var.model_server_count
  vpc_zone_identifier = local.model_subnet_ids
  target_group_arns   = [aws_lb_target_group.model[0].arn]
  health_check_type   = "ELB"
  # The user data's install and the first model load: the load balancer's failing /ping
  # must not get a booting server replaced before it can answer.
  health_check_grace_period = var.model_server_boot_grace_s
  # Terraform does not wait for the servers: their boot needs the release that
  # ./deploy.sh publishes after this apply.
  wait_for_capacity_timeout = "0"

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
