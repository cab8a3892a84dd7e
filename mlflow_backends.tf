# Radio on AWS: the managed registry backend (registry_backend = "managed"): RDS
# PostgreSQL and an S3 artefact bucket; the bucket also carries the release the Auto
# Scaling model servers install at boot.
# (Split from main.tf by concern; variables in variables.tf, outputs in outputs.tf.)

# --- Managed MLflow backend: RDS PostgreSQL and S3 ----------------------------------

resource "aws_s3_bucket" "artifacts" {
  count = local.bucket ? 1 : 0

  bucket_prefix = "${var.project_name}-mlflow-"
  force_destroy = false
}

resource "aws_s3_bucket_public_access_block" "artifacts" {
  count = local.bucket ? 1 : 0

  bucket                  = aws_s3_bucket.artifacts[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "artifacts" {
  count = local.bucket ? 1 : 0

  bucket = aws_s3_bucket.artifacts[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "artifacts" {
  count = local.bucket ? 1 : 0

  bucket = aws_s3_bucket.artifacts[0].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_security_group" "rds" {
  count = local.managed_registry ? 1 : 0

  name        = "${var.project_name}-mlflow-db"
  description = "Radio MLflow tracking database: PostgreSQL from the model servers only"
  vpc_id      = data.aws_vpc.default.id
}

resource "aws_vpc_security_group_ingress_rule" "rds_from_mlflow" {
  count = local.managed_registry ? 1 : 0

  security_group_id            = aws_security_group.rds[0].id
  description                  = "PostgreSQL from the model servers"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.mlflow.id
}

resource "aws_db_subnet_group" "mlflow" {
  count = local.managed_registry ? 1 : 0

  name       = "${var.project_name}-mlflow"
  subnet_ids = local.model_subnet_ids
}

resource "aws_db_instance" "mlflow" {
  count = local.managed_registry ? 1 : 0

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
