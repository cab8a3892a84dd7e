output "frontend_public_ip" {
  description = "Elastic IP of the frontend host: stable across stops, starts and instance replacement (nginx on 80/443, SSH for Ansible)."
  value       = aws_eip.frontend.public_ip
}

output "frontend_public_dns" {
  description = "AWS's public DNS name of the frontend's Elastic IP."
  value       = aws_eip.frontend.public_dns
}

output "frontend_hostname" {
  description = "Name the HTTPS certificate is for: domain_name, or <elastic-ip-with-dashes>.sslip.io."
  value       = local.frontend_hostname
}

output "frontend_url" {
  description = "Address of the web application (HTTPS; plain HTTP redirects here)."
  value       = "https://${local.frontend_hostname}"
}

output "model_server_count" {
  description = "Number of model servers (1: one instance; more: an Auto Scaling group behind an internal load balancer)."
  value       = var.model_server_count
}

output "model_asg_name" {
  description = "Name of the model servers' Auto Scaling group (null with one model server); deploy.sh lists its instances for Ansible."
  value       = local.scale_out ? aws_autoscaling_group.model[0].name : null
}

output "mlflow_public_ip" {
  description = "Public IPv4 address of the MLflow host, the registry (SSH for Ansible; port 8000 is closed to the internet unless mlflow_public_ingress_cidrs opens it). It exists with any number of model servers."
  value       = aws_instance.mlflow[0].public_ip
}

output "mlflow_private_ip" {
  description = "Private IPv4 address of the MLflow host (the registry)."
  value       = aws_instance.mlflow[0].private_ip
}

output "mlflow_url" {
  description = "Public address of the single model server (reachable only from mlflow_public_ingress_cidrs, or through an SSH tunnel); null when model_server_count > 1."
  value       = local.scale_out ? null : "http://${aws_instance.mlflow[0].public_ip}:${var.mlflow_port}"
}

output "mlflow_private_url" {
  description = "Address the frontend's MLFLOW_URL points at inside the VPC: the model host, or the internal load balancer when model_server_count > 1."
  value       = local.scale_out ? "http://${aws_lb.model[0].dns_name}:${var.mlflow_port}" : "http://${aws_instance.mlflow[0].private_ip}:${var.mlflow_port}"
}

output "data_volume_ids" {
  description = "Encrypted EBS data volumes by role (frontend; mlflow with one model server), mounted at /var/lib/radio; ./deploy.sh backup snapshots them."
  value       = { for role, volume in aws_ebs_volume.data : role => volume.id }
}

output "mlflow_artifacts_bucket" {
  description = "S3 bucket of the managed registry's artefacts and of the release the Auto Scaling model servers install at boot (null with registry_backend = \"sqlite\" and one model server)."
  value       = local.bucket ? aws_s3_bucket.artifacts[0].bucket : null
}

output "mlflow_database_endpoint" {
  description = "host:port of the MLflow tracking database (null unless registry_backend = \"managed\"); the password is in the Secrets Manager secret of mlflow_database_secret_arn."
  value       = local.managed_registry ? aws_db_instance.mlflow[0].endpoint : null
}

output "mlflow_database_secret_arn" {
  description = "ARN of the Secrets Manager secret RDS keeps the database password in (null unless registry_backend = \"managed\")."
  value       = local.managed_registry ? aws_db_instance.mlflow[0].master_user_secret[0].secret_arn : null
}

output "registry_backend" {
  description = "The registry's backend: sqlite (on the MLflow host's data volume) or managed (RDS PostgreSQL + S3)."
  value       = var.registry_backend
}

output "registry_backend_uri" {
  description = "MLflow backend store of the registry on the MLflow host (radio_model_registry_backend_uri), without its password (RDS keeps it: mlflow_database_secret_arn, which the registry reads at start), over TLS (sslmode=require), through psycopg 3 (a core dependency); null with SQLite on the data volume."
  value       = local.managed_registry ? "postgresql+psycopg://mlflow@${aws_db_instance.mlflow[0].endpoint}/mlflow?sslmode=require" : null
}

output "registry_artifacts" {
  description = "MLflow artefact root of the registry (radio_model_registry_artifacts); null with artefacts on the data volume."
  value       = local.managed_registry ? "s3://${aws_s3_bucket.artifacts[0].bucket}/artifacts" : null
}

output "model_server_release" {
  description = "Where ./deploy.sh publishes the release and the Ansible variables the Auto Scaling model servers install at boot (null with one model server)."
  value = local.scale_out ? {
    bucket      = aws_s3_bucket.artifacts[0].bucket
    release_key = local.boot_release_key
    vars_key    = local.boot_vars_key
  } : null
}

output "ssh_user" {
  description = "Login user of the Ubuntu image, used by Ansible."
  value       = "ubuntu"
}

output "mlflow_port" {
  description = "TCP port of the model server (and of its load balancer)."
  value       = var.mlflow_port
}

output "metrics_ports" {
  description = "Ports of the model servers that Prometheus on the frontend scrapes (node_exporter, model_metrics), open to the frontend's security group only; deploy.sh passes them to Ansible."
  value       = local.metrics_ports
}
