variable "region" {
  description = "AWS region to deploy into. AWS Academy Learner Lab accounts only allow us-east-1 and us-west-2."
  type        = string
  default     = "us-east-1"
}

variable "aws_profile" {
  description = "Profile name in the shared credentials file (the Learner Lab's 'AWS Details' block, pasted under this name)."
  type        = string
  default     = "awslearnerlab"
}

variable "credentials_file" {
  description = "Path of the shared credentials file, relative to the directory Terraform runs in (the project root for deploy.sh)."
  type        = string
  default     = ".aws/_credentials"
}

variable "project_name" {
  description = "Name prefix for every resource and the value of the Project tag."
  type        = string
  default     = "radio"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.project_name))
    error_message = "project_name must be 2-21 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags applied to every resource, merged over the Project and ManagedBy tags."
  type        = map(string)
  default     = {}
}

variable "admin_cidr" {
  description = "The only network allowed to SSH (port 22) into both hosts, usually the operator's public address as a /32. No default on purpose: SSH must never be open to the world."
  type        = string

  # By prefix length, not by a list of forbidden values: 0.0.0.0/1 is half the
  # internet and would pass a "not 0.0.0.0/0" test. try() because && does not
  # short-circuit in every Terraform release this configuration supports.
  validation {
    condition = try(
      can(regex("^[0-9]{1,3}(\\.[0-9]{1,3}){3}/[0-9]{1,2}$", var.admin_cidr)) &&
      can(cidrhost(var.admin_cidr, 0)) &&
      tonumber(split("/", var.admin_cidr)[1]) >= 16,
      false
    )
    error_message = "admin_cidr must be an IPv4 CIDR block no larger than a /16, such as 203.0.113.7/32: SSH is never opened to the internet."
  }
}

variable "http_ingress_cidrs" {
  description = "IPv4 networks allowed to reach the frontend on ports 80 and 443."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = alltrue([for cidr in var.http_ingress_cidrs : can(regex("^[0-9]{1,3}(\\.[0-9]{1,3}){3}/[0-9]{1,2}$", cidr)) && can(cidrhost(cidr, 0))])
    error_message = "http_ingress_cidrs must be IPv4 CIDR blocks such as 0.0.0.0/0 or 198.51.100.0/24."
  }
}

variable "mlflow_public_ingress_cidrs" {
  description = "Extra networks allowed to reach the model server's port directly. Empty by default: only the frontend's security group may call it (see the README, Deploy to AWS, for why). Operators who need direct access can list their own /32 here."
  type        = list(string)
  default     = []

  # The scoring port has no authentication: at most a /16 per entry, so neither
  # 0.0.0.0/0 nor a "clever" 0.0.0.0/1 + 128.0.0.0/1 pair can open it to the world.
  validation {
    condition = alltrue([
      for cidr in var.mlflow_public_ingress_cidrs : try(
        can(regex("^[0-9]{1,3}(\\.[0-9]{1,3}){3}/[0-9]{1,2}$", cidr)) &&
        can(cidrhost(cidr, 0)) &&
        tonumber(split("/", cidr)[1]) >= 16,
        false
      )
    ])
    error_message = "mlflow_public_ingress_cidrs entries must be IPv4 CIDR blocks no larger than a /16 (your own /32, usually): port 8000 is never opened to the internet."
  }
}

variable "mlflow_port" {
  description = "TCP port of the MLflow scoring server (/invocations, /ping) on the MLflow host."
  type        = number
  default     = 8000

  validation {
    condition     = var.mlflow_port >= 1024 && var.mlflow_port <= 65535 && floor(var.mlflow_port) == var.mlflow_port
    error_message = "mlflow_port must be an unprivileged TCP port (1024-65535): the service runs as an unprivileged user."
  }
}

variable "node_exporter_port" {
  description = "TCP port of the node exporter on the model servers, scraped by Prometheus on the frontend (opened to the frontend's security group only)."
  type        = number
  default     = 9100

  validation {
    condition     = var.node_exporter_port >= 1024 && var.node_exporter_port <= 65535 && floor(var.node_exporter_port) == var.node_exporter_port
    error_message = "node_exporter_port must be an unprivileged TCP port (1024-65535)."
  }
}

variable "model_metrics_port" {
  description = "TCP port of the model servers' Prometheus metrics (monitoring/model_host.py, MODEL_SERVER_METRICS_PORT), scraped by Prometheus on the frontend (opened to the frontend's security group only)."
  type        = number
  default     = 9102

  validation {
    condition     = var.model_metrics_port >= 1024 && var.model_metrics_port <= 65535 && floor(var.model_metrics_port) == var.model_metrics_port
    error_message = "model_metrics_port must be an unprivileged TCP port (1024-65535): the model server runs as an unprivileged user."
  }
}

variable "ssh_public_key" {
  description = "OpenSSH public key imported as the instances' key pair; deploy.sh derives it from .aws/key.pem. Leave null when existing_key_name is set."
  type        = string
  default     = null
}

variable "existing_key_name" {
  description = "Name of a key pair that already exists in the region (the Learner Lab's 'vockey', for example). When set, no key pair is imported."
  type        = string
  default     = null
}

variable "frontend_instance_type" {
  description = "EC2 instance type of the frontend host (nginx, gunicorn, Flask)."
  type        = string
  default     = "t3.small"
}

variable "mlflow_instance_type" {
  description = "EC2 instance type of the MLflow model server host. t3.medium (4 GiB) is the smallest that holds the ML stack comfortably."
  type        = string
  default     = "t3.medium"
}

variable "frontend_root_volume_gb" {
  description = "Size in GiB of the frontend host's encrypted gp3 root volume."
  type        = number
  default     = 16

  validation {
    condition     = var.frontend_root_volume_gb >= 8
    error_message = "The Ubuntu image needs at least 8 GiB."
  }
}

variable "mlflow_root_volume_gb" {
  description = "Size in GiB of the MLflow host's encrypted gp3 root volume; the ML extra (TensorFlow, MLflow, ONNX Runtime) takes several GiB."
  type        = number
  default     = 30

  validation {
    condition     = var.mlflow_root_volume_gb >= 16
    error_message = "The ML stack needs at least 16 GiB."
  }
}

variable "subnet_id" {
  description = "Subnet of both hosts (a default subnet of the default VPC). Null: the first usable one by id, the same on every plan. Hosts never move once created."
  type        = string
  default     = null

  validation {
    condition     = var.subnet_id == null || can(regex("^subnet-[0-9a-f]{8,17}$", var.subnet_id))
    error_message = "subnet_id must be a subnet id such as subnet-0123abcd, or null."
  }
}

variable "domain_name" {
  description = "DNS name of the frontend for its Let's Encrypt certificate, pointed (A record) at the frontend_public_ip output. Null: <elastic-ip-with-dashes>.sslip.io, which resolves to the Elastic IP with no DNS setup."
  type        = string
  default     = null

  validation {
    condition     = var.domain_name == null || can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.domain_name))
    error_message = "domain_name must be a lower-case DNS name such as radio.example.org."
  }
}

variable "frontend_data_volume_gb" {
  description = "Size in GiB of the frontend's encrypted data volume (uploads and the database at /var/lib/radio); it outlives the instance."
  type        = number
  default     = 20

  validation {
    condition     = var.frontend_data_volume_gb >= 1 && var.frontend_data_volume_gb <= 1024
    error_message = "frontend_data_volume_gb must be between 1 and 1024."
  }
}

variable "mlflow_data_volume_gb" {
  description = "Size in GiB of the single model host's encrypted data volume (registry and artefacts at /var/lib/radio). Not used when model_server_count > 1: those servers keep no state."
  type        = number
  default     = 20

  validation {
    condition     = var.mlflow_data_volume_gb >= 1 && var.mlflow_data_volume_gb <= 1024
    error_message = "mlflow_data_volume_gb must be between 1 and 1024."
  }
}

variable "data_device_name" {
  description = "Device name the data volumes are attached as; Nitro instances show it as an NVMe disk that the playbooks find by volume id."
  type        = string
  default     = "/dev/sdf"

  validation {
    condition     = can(regex("^/dev/sd[f-p]$", var.data_device_name))
    error_message = "data_device_name must be one of /dev/sdf ... /dev/sdp (AWS's recommended range for EBS volumes)."
  }
}

variable "snapshot_role_name" {
  description = "IAM role that Data Lifecycle Manager assumes for the daily snapshots of the data volumes. The Learner Lab forbids creating roles, so its LabRole is used; null turns the schedule off (./deploy.sh backup still works)."
  type        = string
  default     = "LabRole"
}

variable "snapshot_retain_days" {
  description = "Number of daily data-volume snapshots kept."
  type        = number
  default     = 7

  validation {
    condition     = var.snapshot_retain_days >= 1 && var.snapshot_retain_days <= 1000
    error_message = "snapshot_retain_days must be between 1 and 1000."
  }
}

variable "model_server_count" {
  description = "Number of model servers. 1: one instance, as before. More: an internal Application Load Balancer (health check /ping) in front of an Auto Scaling group of that many instances over at least two zones; the app calls the load balancer."
  type        = number
  default     = 1

  validation {
    condition     = var.model_server_count >= 1 && var.model_server_count <= 10 && floor(var.model_server_count) == var.model_server_count
    error_message = "model_server_count must be a whole number from 1 to 10 (the Learner Lab caps running instances)."
  }
}

variable "registry_backend" {
  description = "Where the one registry every model server follows keeps its data: \"sqlite\" (SQLite and artefacts on the MLflow host's encrypted data volume) or \"managed\" (an RDS PostgreSQL database, encrypted, private, password kept by RDS in Secrets Manager, and a private, encrypted, versioned S3 bucket for the artefacts)."
  type        = string
  default     = "sqlite"

  validation {
    condition     = contains(["sqlite", "managed"], var.registry_backend)
    error_message = "registry_backend must be \"sqlite\" or \"managed\"."
  }
}

variable "model_server_boot_grace_s" {
  description = "Seconds the Auto Scaling group waits before the load balancer's health check may replace a new model server: its user data installs the release and loads the model first (model_server_count > 1)."
  type        = number
  default     = 900

  validation {
    condition     = var.model_server_boot_grace_s >= 300 && var.model_server_boot_grace_s <= 3600
    error_message = "model_server_boot_grace_s must be between 300 and 3600: a boot installs packages and loads the model."
  }
}

variable "instance_profile_name" {
  description = "Existing instance profile for the model servers when they use the bucket (registry_backend = \"managed\", or model_server_count > 1). The Learner Lab's LabInstanceProfile: no IAM role or profile is ever created here."
  type        = string
  default     = "LabInstanceProfile"
}

variable "rds_instance_class" {
  description = "RDS instance class of the MLflow database (mlflow_backend_rds)."
  type        = string
  default     = "db.t3.micro"

  validation {
    condition     = can(regex("^db\\.[a-z0-9]+\\.[a-z0-9]+$", var.rds_instance_class))
    error_message = "rds_instance_class must look like db.t3.micro."
  }
}
