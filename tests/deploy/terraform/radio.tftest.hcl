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

  override_data {
    target = data.aws_subnet.chosen
    values = {
      availability_zone = "us-east-1a"
    }
  }

  override_data {
    target = data.aws_iam_role.snapshots
    values = {
      arn = "arn:aws:iam::123456789012:role/LabRole"
    }
  }

  override_resource {
    target = aws_eip.frontend
    values = {
      public_ip = "198.51.100.10"
    }
  }

  override_resource {
    target = aws_lb.model
    values = {
      arn      = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/radio-model/0123456789abcdef"
      dns_name = "internal-radio-model-123.us-east-1.elb.amazonaws.com"
    }
  }

  override_resource {
    target = aws_launch_template.model
    values = {
      id = "lt-0123456789abcdef0"
    }
  }

  override_resource {
    target = aws_lb_target_group.model
    values = {
      arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/radio-model/0123456789abcdef"
    }
  }

  override_resource {
    target = aws_db_instance.mlflow
    values = {
      endpoint = "radio-mlflow.abc.us-east-1.rds.amazonaws.com:5432"
      master_user_secret = [{
        secret_arn    = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds-abc"
        kms_key_id    = "alias/aws/secretsmanager"
        secret_status = "active"
      }]
    }
  }
}

variables {
  admin_cidr     = "203.0.113.7/32"
  ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMockedKeyForTerraformTestsOnly radio"
}

# First, on an empty state: an instance made earlier keeps its key (ignore_changes).
run "existing_key_pair" {
  command = plan

  variables {
    ssh_public_key    = null
    existing_key_name = "vockey"
  }

  assert {
    condition     = length(aws_key_pair.deploy) == 0 && aws_instance.mlflow[0].key_name == "vockey"
    error_message = "An existing key pair is used as is."
  }
}

run "defaults" {
  command = apply

  assert {
    condition     = local.usable_zones == tolist(["us-east-1a"])
    error_message = "Only zones offering every instance type may be used."
  }

  assert {
    condition     = aws_instance.frontend.subnet_id == "subnet-aaaa" && aws_instance.mlflow[0].subnet_id == "subnet-aaaa"
    error_message = "Both hosts share the first subnet."
  }

  assert {
    condition     = aws_instance.mlflow[0].instance_type == "t3.medium" && aws_instance.frontend.ami == "ami-mocked"
    error_message = "The MLflow host is a t3.medium on the looked-up AMI."
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.mlflow_from_frontend[0].referenced_security_group_id == aws_security_group.frontend.id
    error_message = "Port 8000 is open to the frontend's security group."
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.mlflow_from_frontend[0].from_port == 8000 && length(aws_vpc_security_group_ingress_rule.mlflow_public) == 0
    error_message = "Nothing else reaches port 8000 by default."
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.registry_from_frontend.referenced_security_group_id == aws_security_group.frontend.id && aws_vpc_security_group_ingress_rule.registry_from_frontend.security_group_id == aws_security_group.mlflow.id && aws_vpc_security_group_ingress_rule.registry_from_frontend.from_port == 5000 && aws_vpc_security_group_ingress_rule.registry_from_frontend.cidr_ipv4 == null
    error_message = "The registry (port 5000) admits the frontend's security group: its admin page, retraining and drift jobs use the one registry."
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
    condition     = output.mlflow_private_url == "http://${aws_instance.mlflow[0].private_ip}:8000"
    error_message = "The frontend's MLFLOW_URL uses the private address."
  }

  assert {
    condition = alltrue([
      for rule in aws_vpc_security_group_ingress_rule.mlflow_metrics_from_frontend :
      rule.referenced_security_group_id == aws_security_group.frontend.id && rule.cidr_ipv4 == null && rule.security_group_id == aws_security_group.mlflow.id
    ])
    error_message = "The model servers' metrics ports admit the frontend's security group (its Prometheus) only."
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.mlflow_metrics_from_frontend["node_exporter"].from_port == 9100 && aws_vpc_security_group_ingress_rule.mlflow_metrics_from_frontend["model_metrics"].from_port == 9102 && output.metrics_ports.node_exporter == 9100 && output.metrics_ports.model_metrics == 9102
    error_message = "Node exporter (9100) and model metrics (9102) are the ports opened, and deploy.sh learns them."
  }
}

run "data_survives_and_the_address_is_stable" {
  command = apply

  assert {
    condition     = aws_eip_association.frontend.instance_id == aws_instance.frontend.id && output.frontend_public_ip == "198.51.100.10"
    error_message = "The frontend's address is an Elastic IP."
  }

  assert {
    condition     = output.frontend_url == "https://198-51-100-10.sslip.io" && output.frontend_hostname == "198-51-100-10.sslip.io"
    error_message = "Without domain_name the URL is HTTPS on the Elastic IP's sslip.io name."
  }

  assert {
    condition     = alltrue([for v in aws_ebs_volume.data : v.encrypted && v.final_snapshot && v.availability_zone == "us-east-1a" && v.tags.Backup == "radio"])
    error_message = "Data volumes are encrypted, snapshotted before deletion, in the hosts' zone and tagged for backups."
  }

  assert {
    condition     = aws_volume_attachment.data["frontend"].instance_id == aws_instance.frontend.id && aws_volume_attachment.data["mlflow"].instance_id == aws_instance.mlflow[0].id
    error_message = "Each host gets its own data volume."
  }

  assert {
    condition     = aws_dlm_lifecycle_policy.data[0].execution_role_arn == "arn:aws:iam::123456789012:role/LabRole" && aws_dlm_lifecycle_policy.data[0].policy_details[0].target_tags.Backup == "radio"
    error_message = "Daily snapshots run as the Learner Lab's LabRole, on the tagged volumes."
  }

  assert {
    condition     = output.data_volume_ids == { for k, v in aws_ebs_volume.data : k => v.id } && length(output.data_volume_ids) == 2
    error_message = "Both data volumes are reported for ./deploy.sh backup."
  }

  assert {
    condition     = length(aws_lb.model) == 0 && length(aws_autoscaling_group.model) == 0 && length(aws_db_instance.mlflow) == 0 && length(aws_s3_bucket.artifacts) == 0
    error_message = "One model server, no RDS and no S3 by default."
  }

  assert {
    condition     = local.instance_profile == null
    error_message = "No instance profile without S3."
  }
}

run "domain_name_and_no_snapshot_schedule" {
  command = plan

  variables {
    domain_name        = "radio.example.org"
    snapshot_role_name = null
  }

  assert {
    condition     = output.frontend_url == "https://radio.example.org" && length(aws_dlm_lifecycle_policy.data) == 0
    error_message = "domain_name names the certificate; no role, no schedule."
  }
}

run "three_model_servers_behind_an_internal_load_balancer" {
  command = apply

  variables {
    model_server_count = 3
  }

  assert {
    condition     = length(aws_instance.mlflow) == 1 && aws_autoscaling_group.model[0].desired_capacity == 3 && aws_autoscaling_group.model[0].min_size == 3
    error_message = "Three servers in an Auto Scaling group, and the MLflow host (the registry) stays."
  }

  assert {
    condition     = length(aws_autoscaling_group.model[0].vpc_zone_identifier) >= 2 && aws_lb.model[0].internal && length(aws_lb.model[0].subnets) >= 2
    error_message = "The group and its internal load balancer span at least two subnets."
  }

  assert {
    condition     = aws_lb_target_group.model[0].health_check[0].path == "/ping" && aws_lb_target_group.model[0].port == 8000 && aws_autoscaling_group.model[0].health_check_type == "ELB"
    error_message = "Targets are checked on /ping and replaced when they fail it."
  }

  assert {
    condition     = output.mlflow_private_url == "http://internal-radio-model-123.us-east-1.elb.amazonaws.com:8000" && output.model_asg_name == "radio-model"
    error_message = "The app points at the load balancer."
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.model_lb_from_frontend[0].referenced_security_group_id == aws_security_group.frontend.id && aws_vpc_security_group_ingress_rule.mlflow_from_lb[0].referenced_security_group_id == aws_security_group.model_lb[0].id && length(aws_vpc_security_group_ingress_rule.mlflow_from_frontend) == 0
    error_message = "frontend -> load balancer -> servers on 8000, nothing else."
  }

  assert {
    condition     = aws_launch_template.model[0].metadata_options[0].http_tokens == "required" && aws_launch_template.model[0].block_device_mappings[0].ebs[0].encrypted == "true"
    error_message = "The servers keep IMDSv2 only and encrypted disks."
  }

  assert {
    condition     = keys(aws_ebs_volume.data) == ["frontend", "mlflow"] && aws_volume_attachment.data["mlflow"].instance_id == aws_instance.mlflow[0].id
    error_message = "The registry's volume stays on the MLflow host; the scale-out model servers keep none."
  }

  assert {
    condition     = aws_autoscaling_group.model[0].health_check_grace_period == 900 && aws_autoscaling_group.model[0].wait_for_capacity_timeout == "0"
    error_message = "A booting server has the grace of its install and model load."
  }

  assert {
    condition     = strcontains(base64decode(aws_launch_template.model[0].user_data), "bucket='${aws_s3_bucket.artifacts[0].bucket}'") && strcontains(base64decode(aws_launch_template.model[0].user_data), "mlflow.playbook.yml") && strcontains(base64decode(aws_launch_template.model[0].user_data), "releases/radio-src.tar.gz")
    error_message = "The launch template's user data installs the published release and applies the model host's playbook."
  }

  assert {
    condition     = aws_launch_template.model[0].iam_instance_profile[0].name == "LabInstanceProfile" && output.model_server_release.bucket == aws_s3_bucket.artifacts[0].bucket && output.model_server_release.vars_key == "releases/model-server-vars.json"
    error_message = "The servers read the release from the private bucket with the lab's instance profile."
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.registry_from_model_servers[0].referenced_security_group_id == aws_security_group.mlflow.id && aws_vpc_security_group_ingress_rule.registry_from_model_servers[0].from_port == 5000 && aws_vpc_security_group_ingress_rule.registry_from_model_servers[0].cidr_ipv4 == null
    error_message = "The MLflow host's registry admits the model servers' group only."
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.registry_from_frontend.referenced_security_group_id == aws_security_group.frontend.id
    error_message = "With several model servers the frontend still reaches the one registry."
  }

  assert {
    condition     = length(aws_db_instance.mlflow) == 0 && output.registry_backend == "sqlite" && output.registry_backend_uri == null
    error_message = "SQLite on the MLflow host stays the registry's default."
  }
}

run "three_model_servers_with_rds_and_s3" {
  command = apply

  variables {
    model_server_count = 3
    registry_backend   = "managed"
  }

  assert {
    condition     = aws_db_instance.mlflow[0].storage_encrypted && !aws_db_instance.mlflow[0].publicly_accessible && aws_db_instance.mlflow[0].manage_master_user_password
    error_message = "The database is encrypted, private, and its password is kept by RDS."
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.rds_from_mlflow[0].referenced_security_group_id == aws_security_group.mlflow.id && aws_vpc_security_group_ingress_rule.rds_from_mlflow[0].from_port == 5432
    error_message = "PostgreSQL is reachable from the model servers only."
  }

  assert {
    condition     = aws_s3_bucket_public_access_block.artifacts[0].block_public_acls && aws_s3_bucket_public_access_block.artifacts[0].restrict_public_buckets && aws_s3_bucket_versioning.artifacts[0].versioning_configuration[0].status == "Enabled"
    error_message = "The artefact bucket is private and versioned."
  }

  assert {
    condition     = aws_launch_template.model[0].iam_instance_profile[0].name == "LabInstanceProfile"
    error_message = "The servers use the Learner Lab's instance profile (no role is created)."
  }

  assert {
    condition     = output.mlflow_database_secret_arn == "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds-abc"
    error_message = "The password's secret is reported, never the password."
  }

  assert {
    condition     = output.registry_backend_uri == "postgresql+psycopg://mlflow@radio-mlflow.abc.us-east-1.rds.amazonaws.com:5432/mlflow?sslmode=require" && output.registry_artifacts == "s3://${aws_s3_bucket.artifacts[0].bucket}/artifacts"
    error_message = "The MLflow host's registry is told its database (no password, TLS required) and artefact root."
  }
}

run "one_model_server_with_rds_and_s3" {
  command = plan

  variables {
    registry_backend = "managed"
  }

  assert {
    condition     = aws_instance.mlflow[0].iam_instance_profile == "LabInstanceProfile" && length(aws_db_instance.mlflow) == 1 && length(aws_lb.model) == 0
    error_message = "One server can use RDS and S3 too."
  }
}

run "registry_backend_is_one_of_two" {
  command = plan

  variables {
    registry_backend = "postgres"
  }

  expect_failures = [var.registry_backend]
}

run "model_server_count_is_bounded" {
  command = plan

  variables {
    model_server_count = 0
  }

  expect_failures = [var.model_server_count]
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

run "metrics_ports_follow_the_variables" {
  command = plan

  variables {
    node_exporter_port = 19100
    model_metrics_port = 19102
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.mlflow_metrics_from_frontend["node_exporter"].from_port == 19100 && aws_vpc_security_group_ingress_rule.mlflow_metrics_from_frontend["model_metrics"].to_port == 19102
    error_message = "The metrics rules open the configured ports."
  }
}

run "metrics_port_is_unprivileged" {
  command = plan

  variables {
    node_exporter_port = 100
  }

  expect_failures = [var.node_exporter_port]
}

run "metrics_port_cannot_be_the_model_port" {
  command = plan

  variables {
    model_metrics_port = 8000
  }

  expect_failures = [aws_vpc_security_group_ingress_rule.mlflow_metrics_from_frontend]
}

# Scaling out, as an operator would: one model server applied (the managed backend, so a
# database and a bucket exist too), then model_server_count = 3 planned on that state.
# test_terraform.py also reads this plan (terraform test -verbose) and asserts that it
# destroys or replaces no volume, no database and no bucket.
run "scale_out_start_with_one_model_server" {
  command = apply

  variables {
    registry_backend = "managed"
  }
}

run "scale_out_to_three_model_servers" {
  command = plan

  variables {
    registry_backend   = "managed"
    model_server_count = 3
  }

  assert {
    condition     = output.data_volume_ids == run.scale_out_start_with_one_model_server.data_volume_ids
    error_message = "Both data volumes are kept, with their ids (a replaced volume would have a new one)."
  }

  assert {
    condition     = output.mlflow_artifacts_bucket == run.scale_out_start_with_one_model_server.mlflow_artifacts_bucket && output.mlflow_database_endpoint == run.scale_out_start_with_one_model_server.mlflow_database_endpoint
    error_message = "The bucket and the database are kept."
  }
}
