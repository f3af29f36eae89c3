variable "project" {
  description = "Project name; the first part of every resource name."
  type        = string
  default     = "citas"
}

variable "environment" {
  description = "Deployment environment (dev, staging, prod); the second part of every resource name."
  type        = string
  default     = "dev"
}

variable "aws_region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "us-east-1"
}

variable "countries" {
  description = "ISO 3166 alpha-2 codes of the countries served; each gets its own booking-request queue."
  type        = list(string)
  default     = ["PE", "CL"]

  validation {
    condition     = length(var.countries) > 0 && alltrue([for c in var.countries : can(regex("^[A-Z]{2}$", c))])
    error_message = "countries must be a non-empty list of upper-case ISO 3166 alpha-2 codes, e.g. [\"PE\", \"CL\"]."
  }
}

variable "deletion_protection" {
  description = "Protect the DynamoDB table from deletion (turn on in production)."
  type        = bool
  default     = false
}

variable "message_retention_seconds" {
  description = "How long the events and booking-request queues keep a message (60..1209600)."
  type        = number
  default     = 1209600

  validation {
    condition     = var.message_retention_seconds >= 60 && var.message_retention_seconds <= 1209600
    error_message = "message_retention_seconds must be between 60 and 1209600 (14 days)."
  }
}

variable "max_receive_count" {
  description = "Receives before a message is moved to its dead-letter queue."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 1 and 1000."
  }
}
