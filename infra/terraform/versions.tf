terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.16 renames an API key in place (earlier versions replace it, with a new value): the
      # existing key becomes the demo clinic's under a new name (moved.tf).
      version = "~> 5.16"
    }
  }
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = {
      Project     = var.project
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}
