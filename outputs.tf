output "frontend_public_ip" {
  description = "Public IPv4 address of the frontend host (nginx on port 80, SSH for Ansible)."
  value       = aws_instance.frontend.public_ip
}

output "frontend_public_dns" {
  description = "Public DNS name of the frontend host."
  value       = aws_instance.frontend.public_dns
}

output "frontend_url" {
  description = "Address of the web application."
  value       = "http://${aws_instance.frontend.public_ip}"
}

output "mlflow_public_ip" {
  description = "Public IPv4 address of the MLflow host (SSH for Ansible; the scoring port is closed to the internet unless mlflow_public_ingress_cidrs opens it)."
  value       = aws_instance.mlflow.public_ip
}

output "mlflow_private_ip" {
  description = "Private IPv4 address of the MLflow host: the frontend's MLFLOW_URL points here."
  value       = aws_instance.mlflow.private_ip
}

output "mlflow_url" {
  description = "Public address of the model server (reachable only from mlflow_public_ingress_cidrs, or through an SSH tunnel)."
  value       = "http://${aws_instance.mlflow.public_ip}:${var.mlflow_port}"
}

output "mlflow_private_url" {
  description = "Address the frontend uses to reach the model server inside the VPC."
  value       = "http://${aws_instance.mlflow.private_ip}:${var.mlflow_port}"
}

output "ssh_user" {
  description = "Login user of the Ubuntu image, used by Ansible."
  value       = "ubuntu"
}

output "mlflow_port" {
  description = "TCP port of the model server."
  value       = var.mlflow_port
}
