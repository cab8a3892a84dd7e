# Radio on AWS: the data volumes of both hosts and their snapshots.
# (Split from main.tf by concern; variables in variables.tf, outputs in outputs.tf.)

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
