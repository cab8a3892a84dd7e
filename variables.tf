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
