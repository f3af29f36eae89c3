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

variable "country_time_zones" {
  description = "Default IANA time zone of each country's doctors (CITAS_COUNTRIES); every code in var.countries needs one."
  type        = map(string)
  default = {
    PE = "America/Lima"
    CL = "America/Santiago"
  }
}

# --- Lambda ------------------------------------------------------------------------------

variable "lambda_zip" {
  description = "Path of the Lambda artifact built by `make package`; null means dist/lambda.zip at the repository root."
  type        = string
  default     = null
}

variable "lambda_memory_mb" {
  description = "Memory of each function, in MB (more memory also buys proportionally more CPU)."
  type = object({
    http_api       = optional(number, 512)
    outbox_relay   = optional(number, 256)
    booking_worker = optional(number, 512)
    notifications  = optional(number, 256)
    reminders      = optional(number, 256)
  })
  default = {}

  validation {
    condition     = alltrue([for mb in values(var.lambda_memory_mb) : mb >= 128 && mb <= 10240])
    error_message = "Lambda memory must be between 128 and 10240 MB."
  }
}

variable "lambda_timeout_seconds" {
  description = "Timeout of each function. The HTTP API answers within API Gateway's 29 s; SQS consumers must stay under the queues' 60 s visibility timeout."
  type = object({
    http_api       = optional(number, 10)
    outbox_relay   = optional(number, 30)
    booking_worker = optional(number, 20)
    notifications  = optional(number, 20)
    reminders      = optional(number, 120)
  })
  default = {}

  validation {
    condition = (
      var.lambda_timeout_seconds.http_api <= 29
      && var.lambda_timeout_seconds.booking_worker <= 60
      && var.lambda_timeout_seconds.notifications <= 60
      && alltrue([for s in values(var.lambda_timeout_seconds) : s >= 1 && s <= 900])
    )
    error_message = "Timeouts are 1..900 s; http_api at most 29 s (API Gateway), booking_worker and notifications at most 60 s (queue visibility timeout)."
  }
}

variable "lambda_reserved_concurrency" {
  description = "Reserved concurrency of each function (booking_worker: per country); it also caps the SQS pollers of the queue consumers. -1 reserves nothing, for accounts whose Lambda concurrency quota is still the new-account default of 10."
  type = object({
    http_api       = optional(number, 20)
    outbox_relay   = optional(number, 2)
    booking_worker = optional(number, 2)
    notifications  = optional(number, 5)
    reminders      = optional(number, 1)
  })
  default = {}

  validation {
    condition = (
      alltrue([for n in values(var.lambda_reserved_concurrency) : n == -1 || n >= 1])
      && alltrue([for n in [var.lambda_reserved_concurrency.booking_worker, var.lambda_reserved_concurrency.notifications] : n == -1 || n >= 2])
    )
    error_message = "Reserved concurrency is -1 (none) or at least 1 (0 would stop the function); the SQS consumers (booking_worker, notifications) need at least 2."
  }
}

variable "stream_max_retries" {
  description = "Retries of a failed outbox batch before the relay gives up on it (its outbox items stay in the table)."
  type        = number
  default     = 10

  validation {
    condition     = var.stream_max_retries >= 0 && var.stream_max_retries <= 10000
    error_message = "stream_max_retries must be between 0 and 10000."
  }
}

variable "log_level" {
  description = "Application log level of every function (Lambda advanced logging controls)."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"], var.log_level)
    error_message = "log_level must be TRACE, DEBUG, INFO, WARN, ERROR or FATAL."
  }
}

variable "log_retention_days" {
  description = "Retention of every log group (functions, API access and execution logs, WAF)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, ..., 365, ..., 3653)."
  }
}

# --- API ---------------------------------------------------------------------------------

variable "api_stage_name" {
  description = "API Gateway stage; the last part of the API's base URL."
  type        = string
  default     = "v1"

  validation {
    condition     = can(regex("^[A-Za-z0-9_]{1,128}$", var.api_stage_name))
    error_message = "api_stage_name may contain letters, digits and underscores only."
  }
}

variable "clinics" {
  description = <<-EOT
    The clinics this deployment serves, by clinic id: 2-40 lower-case letters, digits or '-'.
    The id starts every key the clinic's data is stored under, so a clinic is never renamed.
    Each clinic gets its own API key and usage plan, and the parameter
    /<project>-<environment>/clinics/<id> that tells the functions which key is the clinic's
    (the API key API Gateway validated is the only way a request names its clinic). Adding a
    clinic is one entry here and `terraform apply`; its key is in the `clinic_api_keys` output.
    - name: the display name that starts every patient message, 1-80 characters.
    - public_base_url (optional): the http(s) base URL of the clinic's links.
    - quota_per_day (optional): requests per day for the clinic's key; unset, the key gets
      var.api_monthly_quota per month.
    - throttle_rate_limit, throttle_burst_limit (optional): requests per second and burst for
      the clinic's key; unset, var.api_throttle_rate_limit and var.api_throttle_burst_limit.
  EOT
  type = map(object({
    name                 = string
    public_base_url      = optional(string)
    quota_per_day        = optional(number)
    throttle_rate_limit  = optional(number)
    throttle_burst_limit = optional(number)
  }))
  default = {
    demo = { name = "Clínica Demo" }
  }

  validation {
    condition     = length(var.clinics) > 0
    error_message = "clinics must name at least one clinic."
  }

  validation {
    condition     = alltrue([for id in keys(var.clinics) : can(regex("^[a-z0-9-]{2,40}$", id))])
    error_message = "Every clinic id (a key of clinics) is 2-40 lower-case letters, digits or '-', e.g. \"clinica-sol\"."
  }

  # A name the functions accept (domain/clinics.py): one they refuse would fail every request
  # of the deployment when they read the clinics, not only this clinic's.
  validation {
    condition     = alltrue([for c in values(var.clinics) : length(trimspace(c.name)) >= 1 && length(c.name) <= 80 && !can(regex("[\\p{Cc}\\p{Zl}\\p{Zp}]", c.name))])
    error_message = "Every clinic's name is 1-80 characters, not only spaces, on one line (no control characters)."
  }

  # The same URL shape the functions accept: http(s), then printable ASCII without spaces.
  validation {
    condition     = alltrue([for c in values(var.clinics) : c.public_base_url == null || can(regex("^https?://[!-~]+$", c.public_base_url))])
    error_message = "A clinic's public_base_url starts with http:// or https:// and has no spaces."
  }

  # A throttle of 0 stops the clinic's traffic (API Gateway's way to pause one key).
  validation {
    condition = alltrue(flatten([
      for c in values(var.clinics) : [
        c.quota_per_day == null || try(c.quota_per_day >= 1 && floor(c.quota_per_day) == c.quota_per_day, false),
        c.throttle_rate_limit == null || try(c.throttle_rate_limit >= 0, false),
        c.throttle_burst_limit == null || try(c.throttle_burst_limit >= 0 && floor(c.throttle_burst_limit) == c.throttle_burst_limit, false),
      ]
    ]))
    error_message = "A clinic's quota_per_day is a whole number of at least 1; throttle_rate_limit is at least 0; throttle_burst_limit is a whole number of at least 0."
  }
}

variable "api_throttle_rate_limit" {
  description = "Steady-state requests per second allowed per API key (each clinic's usage plan), unless var.clinics sets the clinic's own."
  type        = number
  default     = 100
}

variable "api_throttle_burst_limit" {
  description = "Burst of requests allowed per API key (each clinic's usage plan), unless var.clinics sets the clinic's own."
  type        = number
  default     = 200
}

variable "api_monthly_quota" {
  description = "Requests per month allowed per API key (each clinic's usage plan), unless var.clinics sets the clinic's quota_per_day."
  type        = number
  default     = 1000000

  validation {
    condition     = var.api_monthly_quota >= 1
    error_message = "api_monthly_quota must be at least 1."
  }
}

variable "manage_api_gateway_account" {
  description = "Set this region's API Gateway account CloudWatch role (needed once per account and region for API logs). Turn off if another stack already manages it."
  type        = bool
  default     = true
}

variable "waf_rate_limit" {
  description = "Requests per client IP in any 5-minute window before the WAF blocks that IP."
  type        = number
  default     = 2000

  validation {
    condition     = var.waf_rate_limit >= 10
    error_message = "waf_rate_limit must be at least 10 (the WAF minimum)."
  }
}

# --- alarms ------------------------------------------------------------------------------

variable "alarm_email" {
  description = "E-mail address subscribed to the alarm topic; empty subscribes nobody."
  type        = string
  default     = ""
}

variable "api_5xx_rate_threshold" {
  description = "Alarm when more than this fraction of API requests fail with a 5XX in 5 minutes."
  type        = number
  default     = 0.01
}

variable "api_latency_p95_threshold_ms" {
  description = "Alarm when the API's p95 latency exceeds this many milliseconds."
  type        = number
  default     = 500
}

variable "queue_age_threshold_seconds" {
  description = "Alarm when the oldest message of a booking-request or events queue is older than this."
  type        = number
  default     = 300
}
