terraform {
  # 1.5 brings the check/validation features the configuration relies on.
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Pinned to the 5.x line: 6.0 changed the provider's region handling.
      version = "~> 5.100"
    }
  }
}
