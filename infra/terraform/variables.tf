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

# --- what a stack pays for every month, whatever its traffic -------------------------------
# Each is null by default: on in prod, off in every other environment, so a dev or staging
# stack costs nothing while it is idle (README, "Cost"). Set one to true or false to decide.

variable "enable_waf" {
  description = "AWS WAF in front of the API (US$5 a month per web ACL + US$1 per rule, US$0.60 per million requests). null: on in prod only."
  type        = bool
  default     = null
}

variable "use_customer_managed_keys" {
  description = "Encrypt with the stack's two KMS keys (US$1 a month each) instead of the keys AWS owns or manages for each service. null: on in prod only."
  type        = bool
  default     = null
}

variable "enable_alarms" {
  description = "The CloudWatch alarms and their topic (US$0.10 a month per alarm beyond the account's 10 free ones). null: on in prod only."
  type        = bool
  default     = null
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
    http_api         = optional(number, 512)
    outbox_relay     = optional(number, 256)
    booking_worker   = optional(number, 512)
    notifications    = optional(number, 256)
    reminders        = optional(number, 256)
    offers_sweeper   = optional(number, 256)
    patient_pages    = optional(number, 512)
    inbound_sms      = optional(number, 256)
    inbound_whatsapp = optional(number, 256)
  })
  default = {}

  validation {
    condition     = alltrue([for mb in values(var.lambda_memory_mb) : mb >= 128 && mb <= 10240])
    error_message = "Lambda memory must be between 128 and 10240 MB."
  }
}

variable "lambda_timeout_seconds" {
  description = "Timeout of each function. The HTTP API and the patient pages answer within API Gateway's 29 s; SQS consumers must stay under the queues' 60 s visibility timeout."
  type = object({
    http_api         = optional(number, 10)
    outbox_relay     = optional(number, 30)
    booking_worker   = optional(number, 20)
    notifications    = optional(number, 20)
    reminders        = optional(number, 120)
    offers_sweeper   = optional(number, 50)
    patient_pages    = optional(number, 10)
    inbound_sms      = optional(number, 30)
    inbound_whatsapp = optional(number, 30)
  })
  default = {}

  validation {
    condition = (
      var.lambda_timeout_seconds.http_api <= 29
      && var.lambda_timeout_seconds.patient_pages <= 29
      && var.lambda_timeout_seconds.booking_worker <= 60
      && var.lambda_timeout_seconds.notifications <= 60
      && alltrue([for s in values(var.lambda_timeout_seconds) : s >= 1 && s <= 900])
    )
    error_message = "Timeouts are 1..900 s; http_api and patient_pages at most 29 s (API Gateway), booking_worker and notifications at most 60 s (queue visibility timeout)."
  }
}

variable "lambda_reserved_concurrency" {
  description = "Reserved concurrency of each function (booking_worker: per country); it also caps the SQS pollers of the queue consumers. -1 reserves nothing, for accounts whose Lambda concurrency quota is still the new-account default of 10."
  type = object({
    http_api         = optional(number, 20)
    outbox_relay     = optional(number, 2)
    booking_worker   = optional(number, 2)
    notifications    = optional(number, 5)
    reminders        = optional(number, 1)
    offers_sweeper   = optional(number, 1)
    patient_pages    = optional(number, 10)
    inbound_sms      = optional(number, 2)
    inbound_whatsapp = optional(number, 2)
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
    - public_base_url (optional): the http(s) base URL of the clinic's links; unset, the
      API's own stage URL.
    - channels (optional): how the clinic writes to patients, "sms" and/or "whatsapp", the
      usual one first (default ["sms"]; a reminder at risk goes out on all of them).
    - sms_number (optional): the E.164 number of the clinic's own two-way SMS number, which
      its messages leave from and its patients' replies arrive at; unset, the deployment's
      var.sms_origination_identity. With several clinics, a reply to a number no clinic
      names is dropped, so each clinic that gets replies names its number.
    - whatsapp_phone_number_id (optional): the clinic's own WhatsApp number in AWS End User
      Messaging Social, `phone-number-id-...` or its ARN; unset, the deployment's
      var.whatsapp_phone_number_id.
    - hold_minutes (optional): how long the clinic's waitlist offers hold their slot, 1-1440
      whole minutes; unset, var.hold_minutes.
    - quota_per_day (optional): requests per day for the clinic's key; unset, the key gets
      var.api_monthly_quota per month.
    - throttle_rate_limit, throttle_burst_limit (optional): requests per second and burst for
      the clinic's key; unset, var.api_throttle_rate_limit and var.api_throttle_burst_limit.
  EOT
  type = map(object({
    name                     = string
    public_base_url          = optional(string)
    channels                 = optional(list(string), ["sms"])
    sms_number               = optional(string)
    whatsapp_phone_number_id = optional(string)
    hold_minutes             = optional(number)
    quota_per_day            = optional(number)
    throttle_rate_limit      = optional(number)
    throttle_burst_limit     = optional(number)
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

  # The channels the functions accept (domain/clinics.py): some, each once, of these two.
  validation {
    condition = alltrue([
      for c in values(var.clinics) : length(c.channels) > 0
      && length(distinct(c.channels)) == length(c.channels)
      && alltrue([for channel in c.channels : contains(["sms", "whatsapp"], channel)])
    ])
    error_message = "A clinic's channels is a non-empty list of distinct \"sms\" and \"whatsapp\", e.g. [\"whatsapp\", \"sms\"]."
  }

  # E.164, as the functions accept it (domain/clinics.py).
  validation {
    condition     = alltrue([for c in values(var.clinics) : c.sms_number == null || can(regex("^\\+[1-9][0-9]{7,14}$", c.sms_number))])
    error_message = "A clinic's sms_number is E.164: '+', the country code and the number, 8 to 15 digits, e.g. \"+51987654321\"."
  }

  # The two forms SendWhatsAppMessage takes (and inbound events name), which are also the
  # two this stack can turn into the number's ARN for the functions' IAM grant. The
  # functions accept more ("[A-Za-z0-9:/._-]{1,200}"); none of these is refused there.
  validation {
    condition     = alltrue([for c in values(var.clinics) : c.whatsapp_phone_number_id == null || can(regex("^(phone-number-id-[0-9A-Za-z]{1,99}|arn:aws[a-z-]*:social-messaging:[a-z0-9-]+:[0-9]{12}:phone-number-id/[0-9A-Za-z]{1,99})$", c.whatsapp_phone_number_id))])
    error_message = "A clinic's whatsapp_phone_number_id is \"phone-number-id-<id>\" or \"arn:aws:social-messaging:<region>:<account>:phone-number-id/<id>\"."
  }

  # An inbound message finds its clinic by the number it was sent to: two clinics with one
  # number would both claim its replies.
  validation {
    condition = alltrue([
      for numbers in [
        [for c in values(var.clinics) : c.sms_number if c.sms_number != null],
        [for c in values(var.clinics) : c.whatsapp_phone_number_id if c.whatsapp_phone_number_id != null],
      ] : length(distinct(numbers)) == length(numbers)
    ])
    error_message = "No two clinics share an sms_number or a whatsapp_phone_number_id: replies find their clinic by it."
  }

  # The hold the functions accept (domain/clinics.py): whole minutes, up to a day.
  validation {
    condition     = alltrue([for c in values(var.clinics) : c.hold_minutes == null || try(c.hold_minutes >= 1 && c.hold_minutes <= 1440 && floor(c.hold_minutes) == c.hold_minutes, false)])
    error_message = "A clinic's hold_minutes is a whole number of minutes from 1 to 1440."
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

variable "hold_minutes" {
  description = "How long a waitlist offer holds its slot for the patient, in minutes (CITAS_HOLD_MINUTES), for the clinics without a hold_minutes of their own."
  type        = number
  default     = 30

  validation {
    condition     = var.hold_minutes >= 1 && var.hold_minutes <= 1440 && floor(var.hold_minutes) == var.hold_minutes
    error_message = "hold_minutes must be a whole number of minutes from 1 to 1440."
  }
}

# --- patient messages (AWS End User Messaging) ----------------------------------------

variable "sms_origination_identity" {
  description = <<-EOT
    The deployment's default SMS origination identity (CITAS_SMS_ORIGINATION), used for the
    clinics without an sms_number of their own: a phone number id (`phone-...`), a pool id
    (`pool-...`) or the ARN of a phone number, pool or sender ID of AWS End User Messaging
    SMS. The functions may send SMS only from it and from the clinics' numbers. null: none
    (then only clinics with an sms_number can send SMS).
  EOT
  type        = string
  default     = null

  # The forms this stack can turn into the identity's ARN, the resource SendTextMessage is
  # authorised against (an E.164 number names no ARN: use its phone number id).
  validation {
    condition     = var.sms_origination_identity == null || can(regex("^(phone-[0-9A-Za-z]{1,64}|pool-[0-9A-Za-z]{1,64}|arn:aws[a-z-]*:sms-voice:[a-z0-9-]+:[0-9]{12}:(phone-number|pool)/[0-9A-Za-z_-]{1,128}|arn:aws[a-z-]*:sms-voice:[a-z0-9-]+:[0-9]{12}:sender-id/[0-9A-Za-z]{1,11}/[A-Z]{2})$", var.sms_origination_identity))
    error_message = "sms_origination_identity is a phone number id (phone-...), a pool id (pool-...) or an arn:aws:sms-voice:<region>:<account>:phone-number/..., pool/... or sender-id/... ARN."
  }
}

variable "whatsapp_phone_number_id" {
  description = "The deployment's default WhatsApp number in AWS End User Messaging Social (CITAS_WHATSAPP_PHONE_NUMBER_ID), `phone-number-id-...` or its ARN, used for the clinics without a whatsapp_phone_number_id of their own. null: none."
  type        = string
  default     = null

  validation {
    condition     = var.whatsapp_phone_number_id == null || can(regex("^(phone-number-id-[0-9A-Za-z]{1,99}|arn:aws[a-z-]*:social-messaging:[a-z0-9-]+:[0-9]{12}:phone-number-id/[0-9A-Za-z]{1,99})$", var.whatsapp_phone_number_id))
    error_message = "whatsapp_phone_number_id is \"phone-number-id-<id>\" or \"arn:aws:social-messaging:<region>:<account>:phone-number-id/<id>\"."
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
