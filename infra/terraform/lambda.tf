locals {
  # `make package` writes the artifact here; every function runs the same zip with another
  # handler.
  lambda_zip = coalesce(var.lambda_zip, "${path.module}/../../dist/lambda.zip")
  # A missing zip is reported by the precondition of aws_lambda_function.this, with the
  # command that builds it, instead of by a bare "no such file" from filebase64sha256.
  lambda_zip_hash = fileexists(local.lambda_zip) ? filebase64sha256(local.lambda_zip) : null

  # CITAS_COUNTRIES: `PE=America/Lima,CL=America/Santiago`.
  countries_setting = join(",", [for c in var.countries : "${c}=${var.country_time_zones[c]}"])
  # CITAS_BOOKING_QUEUE_URLS: `PE=https://...,CL=https://...`.
  booking_queue_urls_setting = join(",", [for c in var.countries : "${c}=${aws_sqs_queue.booking_requests[c].url}"])

  # --- the functions ---------------------------------------------------------------------
  #
  # Every function of the stack, by key: one aws_lambda_function.this, log group, role and
  # policy, and errors and throttles alarms each. An entry says what is particular to the
  # function:
  # - kind: what it does; memory, timeout and reserved concurrency come from the variables'
  #   attribute of that name (var.lambda_memory_mb.<kind>, ...), its IAM statements from the
  #   policy document of that name (iam.tf).
  # - environment: its settings beyond local.function_environment, which every function gets
  #   (a null one is left out).
  # - queue: the SQS queue that invokes it (aws_lambda_event_source_mapping.queue), or null.
  # - dead_letter_queue: where Lambda puts failed asynchronous invocations, or null.
  # - country (booking workers only): the country whose requests it books.
  # The physical name is `<project>-<environment>-<key with dashes>`, e.g. citas-dev-http-api.
  functions = merge(local.single_functions, local.booking_workers)

  single_functions = {
    # The HTTP API behind API Gateway (REST proxy).
    http_api = {
      kind        = "http_api"
      description = "citas HTTP API (API Gateway REST proxy)"
      handler     = "entrypoints.lambda.http_api.handler"
      environment = {
        CITAS_BOOKING_QUEUE_URLS = local.booking_queue_urls_setting
        CITAS_PAGE_TOKEN_KEY     = aws_ssm_parameter.page_token_key.value
      }
      queue             = null
      dead_letter_queue = null
    }

    # Publishes the outbox items of the table's stream to the events FIFO queue
    # (aws_lambda_event_source_mapping.outbox_stream).
    outbox_relay = {
      kind        = "outbox_relay"
      description = "citas outbox relay: table stream to the events FIFO queue"
      handler     = "entrypoints.lambda.outbox_relay.handler"
      environment = {
        CITAS_EVENTS_QUEUE_URL = aws_sqs_queue.events.url
      }
      queue             = null
      dead_letter_queue = null
    }

    # The one consumer of the events queue: offers the time an event freed to the doctor's
    # waitlist, then writes to the patients (SMS, WhatsApp), each message with its
    # self-service link.
    notifications = {
      kind              = "notifications"
      description       = "citas events consumer: waitlist offers of freed time, patient notifications (SMS, WhatsApp)"
      handler           = "entrypoints.lambda.notifications.handler"
      environment       = merge(local.link_keys_environment, local.messaging_environment, local.waitlist_environment)
      queue             = aws_sqs_queue.events
      dead_letter_queue = null
    }

    # The confirmation cadence, every 15 minutes (aws_cloudwatch_event_rule.reminders): asks
    # again, marks appointments at risk, reminds, and sends the messages quiet hours held.
    reminders = {
      kind              = "reminders"
      description       = "citas confirmation cadence: asks again, marks at risk, reminds, sends held messages"
      handler           = "entrypoints.lambda.reminders.handler"
      environment       = merge(local.link_keys_environment, local.messaging_environment)
      queue             = null
      dead_letter_queue = aws_sqs_queue.reminders_dlq
    }

    # Lets go of the waitlist offers whose hold ran out, every minute
    # (aws_cloudwatch_event_rule.offers_sweeper); each release's event has the events
    # consumer offer the slot to the next entry.
    offers_sweeper = {
      kind              = "offers_sweeper"
      description       = "citas waitlist offers sweeper: lets expired offers go, every minute"
      handler           = "entrypoints.lambda.offers_sweeper.handler"
      environment       = {}
      queue             = null
      dead_letter_queue = aws_sqs_queue.offers_sweeper_dlq
    }

    # The patients' self-service pages /p/{token} behind API Gateway (REST proxy, no API key).
    patient_pages = {
      kind              = "patient_pages"
      description       = "citas patient pages /p/ (API Gateway REST proxy, no API key)"
      handler           = "entrypoints.lambda.patient_pages.handler"
      environment       = local.link_keys_environment
      queue             = null
      dead_letter_queue = null
    }

    # The patients' SMS replies, from the two-way SMS topic (messaging.tf).
    inbound_sms = {
      kind              = "inbound_sms"
      description       = "citas patient replies by SMS (End User Messaging SMS topic)"
      handler           = "entrypoints.lambda.inbound_sms.handler"
      environment       = merge(local.link_keys_environment, local.messaging_environment)
      queue             = null
      dead_letter_queue = aws_sqs_queue.inbound_sms_dlq
    }

    # The patients' WhatsApp replies and delivery failures, from the WhatsApp topic (messaging.tf).
    inbound_whatsapp = {
      kind              = "inbound_whatsapp"
      description       = "citas patient replies by WhatsApp (End User Messaging Social topic)"
      handler           = "entrypoints.lambda.inbound_whatsapp.handler"
      environment       = merge(local.link_keys_environment, local.messaging_environment)
      queue             = null
      dead_letter_queue = aws_sqs_queue.inbound_whatsapp_dlq
    }
  }

  # One booking worker per country (booking_worker_pe, ...), each reading only its country's
  # FIFO queue.
  booking_workers = {
    for country in var.countries : "booking_worker_${lower(country)}" => {
      kind        = "booking_worker"
      description = "citas booking worker for ${country}"
      handler     = "entrypoints.lambda.booking_worker.handler"
      environment = {
        CITAS_WORKER_COUNTRY = country
      }
      queue             = aws_sqs_queue.booking_requests[country]
      dead_letter_queue = null
      country           = country
    }
  }

  # The settings every function gets. CITAS_CLINICS_PARAMETER_PATH is where the clinic
  # directory lives (aws_ssm_parameter.clinic): the functions read it at run time, so adding a
  # clinic changes no function's configuration.
  function_environment = {
    CITAS_BACKEND                = "aws"
    CITAS_COUNTRIES              = local.countries_setting
    CITAS_TABLE_NAME             = aws_dynamodb_table.citas.name
    CITAS_CLINICS_PARAMETER_PATH = local.clinics_parameter_path
    POWERTOOLS_SERVICE_NAME      = var.project
    POWERTOOLS_METRICS_NAMESPACE = var.project
  }

  # The functions that sign or check patients' links read the key ring from Parameter Store.
  link_keys_environment = {
    CITAS_LINK_KEYS_PARAMETER = aws_ssm_parameter.link_keys.name
  }

  # The functions that write to patients: End User Messaging SMS and Social, from the
  # deployment's default identities (null ones are left out) or the clinic's own, with links
  # to the API's stage unless the clinic names its own public_base_url.
  messaging_environment = {
    CITAS_NOTIFIER                 = "aws"
    CITAS_SMS_ORIGINATION          = var.sms_origination_identity
    CITAS_WHATSAPP_PHONE_NUMBER_ID = var.whatsapp_phone_number_id
    CITAS_PUBLIC_BASE_URL          = local.public_base_url
  }

  # The functions that offer freed time to the waitlist: how long an offer holds its slot,
  # unless the clinic names its own hold_minutes (var.clinics).
  waitlist_environment = {
    CITAS_HOLD_MINUTES = var.hold_minutes
  }

  function_names = { for key in keys(local.functions) : key => "${local.name_prefix}-${replace(key, "_", "-")}" }

  # The relay's stream filter: inserted items whose key is an outbox event's (`OUTBOX#<id>`).
  outbox_stream_filter = {
    eventName = ["INSERT"]
    dynamodb = {
      Keys = {
        pk = {
          S = [{ prefix = "OUTBOX#" }]
        }
      }
    }
  }

  # An SQS event source never polls with more concurrency than the function may use, so a
  # throttled invocation cannot push a message towards its dead-letter queue.
  sqs_max_concurrency = {
    for fn in ["booking_worker", "notifications"] : fn => (
      var.lambda_reserved_concurrency[fn] == -1 ? 1000 : var.lambda_reserved_concurrency[fn]
    )
  }
}

# --- log groups: created here (not by Lambda on first write) so they are encrypted and expire.

resource "aws_cloudwatch_log_group" "function" {
  for_each = local.function_names

  name              = "/aws/lambda/${each.value}"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.observability_key_arn
}

# --- queues of failed invocations (not in sqs.tf: that file holds only the queues the code
# talks to, which `citas provision` creates locally) ---------------------------------------

# Metadata of outbox batches the relay could not publish after every retry. The events stay
# in the table as outbox items, so nothing is lost: an operator republishes them.
resource "aws_sqs_queue" "outbox_relay_failures" {
  name                      = "${local.name_prefix}-outbox-relay-failures"
  message_retention_seconds = local.dlq_retention_seconds
  kms_master_key_id         = local.data_key_arn
  sqs_managed_sse_enabled   = local.sqs_managed_sse
}

# Reminder runs that failed; the next run (15 minutes later) catches up on its own.
resource "aws_sqs_queue" "reminders_dlq" {
  name                      = "${local.name_prefix}-reminders-dlq"
  message_retention_seconds = local.dlq_retention_seconds
  kms_master_key_id         = local.data_key_arn
  sqs_managed_sse_enabled   = local.sqs_managed_sse
}

# Sweeps that failed; the next one (a minute later) does the same work.
resource "aws_sqs_queue" "offers_sweeper_dlq" {
  name                      = "${local.name_prefix}-offers-sweeper-dlq"
  message_retention_seconds = local.dlq_retention_seconds
  kms_master_key_id         = local.data_key_arn
  sqs_managed_sse_enabled   = local.sqs_managed_sse
}

# Patients' replies whose function failed after Lambda's retries of an asynchronous (SNS)
# invocation: the SNS notification, with the reply, waits here to be inspected and replayed.
resource "aws_sqs_queue" "inbound_sms_dlq" {
  name                      = "${local.name_prefix}-inbound-sms-dlq"
  message_retention_seconds = local.dlq_retention_seconds
  kms_master_key_id         = local.data_key_arn
  sqs_managed_sse_enabled   = local.sqs_managed_sse
}

resource "aws_sqs_queue" "inbound_whatsapp_dlq" {
  name                      = "${local.name_prefix}-inbound-whatsapp-dlq"
  message_retention_seconds = local.dlq_retention_seconds
  kms_master_key_id         = local.data_key_arn
  sqs_managed_sse_enabled   = local.sqs_managed_sse
}

# --- functions -----------------------------------------------------------------------------

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:Every function invoked asynchronously (the reminders and the offers sweeper by EventBridge, the inbound functions by SNS) has a DLQ (dynamic dead_letter_config); API Gateway calls the HTTP API and the pages synchronously (the caller gets the error), the SQS consumers' failed messages go to their queue's own DLQ (redrive policy in sqs.tf), and the relay's stream mapping has an on-failure destination (aws_sqs_queue.outbox_relay_failures).
  #checkov:skip=CKV_AWS_117:Talks only to public AWS endpoints (DynamoDB, SQS, SSM, End User Messaging); a VPC would add NAT or endpoint cost and cold-start latency without isolating anything.
  #checkov:skip=CKV_AWS_272:The artifact is built reproducibly by `make package` and pinned by source_code_hash; code signing needs an AWS Signer profile this stack does not assume.
  for_each = local.functions

  function_name                  = local.function_names[each.key]
  description                    = each.value.description
  role                           = aws_iam_role.function[each.key].arn
  handler                        = each.value.handler
  runtime                        = "python3.12"
  architectures                  = ["arm64"]
  filename                       = local.lambda_zip
  source_code_hash               = local.lambda_zip_hash
  memory_size                    = var.lambda_memory_mb[each.value.kind]
  timeout                        = var.lambda_timeout_seconds[each.value.kind]
  reserved_concurrent_executions = var.lambda_reserved_concurrency[each.value.kind]
  kms_key_arn                    = local.data_key_arn

  # A setting without a value (a messaging identity not configured) is left out, not empty.
  environment {
    variables = { for name, value in merge(local.function_environment, each.value.environment) : name => value if value != null }
  }

  dynamic "dead_letter_config" {
    for_each = each.value.dead_letter_queue == null ? [] : [each.value.dead_letter_queue.arn]

    content {
      target_arn = dead_letter_config.value
    }
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.function[each.key].name
    application_log_level = var.log_level
    system_log_level      = "WARN"
  }

  lifecycle {
    precondition {
      condition     = fileexists(local.lambda_zip)
      error_message = "No Lambda artifact at ${local.lambda_zip}: run `make package` first (or set var.lambda_zip)."
    }
    precondition {
      condition     = alltrue([for c in var.countries : contains(keys(var.country_time_zones), c)])
      error_message = "Every country in var.countries needs its time zone in var.country_time_zones."
    }
  }

  # The directory first, so that no container of a new stack starts before its clinics exist.
  depends_on = [aws_iam_role_policy.function, aws_ssm_parameter.clinic]
}

# A failed run is not retried: the next scheduled run, 15 minutes later, catches up (runs
# missed for up to 6 h are), and a retry racing it would only do the same work twice.
resource "aws_lambda_function_event_invoke_config" "reminders" {
  function_name                = aws_lambda_function.this["reminders"].function_name
  maximum_retry_attempts       = 0
  maximum_event_age_in_seconds = 900
}

# The same for the sweeper: a run older than a minute is overtaken by the next one.
resource "aws_lambda_function_event_invoke_config" "offers_sweeper" {
  function_name                = aws_lambda_function.this["offers_sweeper"].function_name
  maximum_retry_attempts       = 0
  maximum_event_age_in_seconds = 60
}

# --- event sources -------------------------------------------------------------------------

# New outbox items only: the filter drops every other item of the table and the relay's own
# deletes (REMOVE), so the relay is invoked once per committed event.
resource "aws_lambda_event_source_mapping" "outbox_stream" {
  event_source_arn                   = aws_dynamodb_table.citas.stream_arn
  function_name                      = aws_lambda_function.this["outbox_relay"].arn
  starting_position                  = "TRIM_HORIZON"
  batch_size                         = 100
  maximum_batching_window_in_seconds = 0
  # One batch per shard at a time keeps a shard's events in commit order.
  parallelization_factor         = 1
  bisect_batch_on_function_error = true
  maximum_retry_attempts         = var.stream_max_retries
  maximum_record_age_in_seconds  = -1
  function_response_types        = ["ReportBatchItemFailures"]

  filter_criteria {
    filter {
      pattern = jsonencode(local.outbox_stream_filter)
    }
  }

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.outbox_relay_failures.arn
    }
  }
}

# Every function with a `queue` in local.functions: the booking workers (their country's
# queue) and the notifications (the events queue).
resource "aws_lambda_event_source_mapping" "queue" {
  for_each = { for key, fn in local.functions : key => fn if fn.queue != null }

  event_source_arn        = each.value.queue.arn
  function_name           = aws_lambda_function.this[each.key].arn
  batch_size              = 10
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = local.sqs_max_concurrency[each.value.kind]
  }
}

resource "aws_cloudwatch_event_rule" "reminders" {
  name                = "${local.name_prefix}-reminders"
  description         = "Runs the citas confirmation cadence (reminders) every 15 minutes."
  schedule_expression = "rate(15 minutes)"
}

resource "aws_cloudwatch_event_target" "reminders" {
  rule = aws_cloudwatch_event_rule.reminders.name
  arn  = aws_lambda_function.this["reminders"].arn
}

resource "aws_lambda_permission" "reminders_schedule" {
  statement_id  = "AllowEventBridgeSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["reminders"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.reminders.arn
}

resource "aws_cloudwatch_event_rule" "offers_sweeper" {
  name                = "${local.name_prefix}-offers-sweeper"
  description         = "Lets the citas waitlist offers whose hold ran out go, every minute."
  schedule_expression = "rate(1 minute)"
}

resource "aws_cloudwatch_event_target" "offers_sweeper" {
  rule = aws_cloudwatch_event_rule.offers_sweeper.name
  arn  = aws_lambda_function.this["offers_sweeper"].arn
}

resource "aws_lambda_permission" "offers_sweeper_schedule" {
  statement_id  = "AllowEventBridgeSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["offers_sweeper"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.offers_sweeper.arn
}

# The key that signs the lists' `next_token` (CITAS_PAGE_TOKEN_KEY). Every container of the
# HTTP function must share it, so it is generated once, kept in Parameter Store (standard tier:
# no charge) encrypted with the data key, and handed to the function in its encrypted
# environment. `ignore_changes` keeps the first value: the data source draws a new one on every
# plan, and a new key would only invalidate the pages clients are in the middle of.
data "aws_secretsmanager_random_password" "page_token_key" {
  password_length     = 48
  exclude_punctuation = true
}

resource "aws_ssm_parameter" "page_token_key" {
  name        = "/${var.project}/${var.environment}/page-token-key"
  description = "Signs the next_token of citas list pages (rotate: taint this and apply)"
  type        = "SecureString"
  key_id      = local.data_key_arn
  value       = data.aws_secretsmanager_random_password.page_token_key.random_password

  lifecycle {
    ignore_changes = [value]
  }
}

# The key ring that signs and checks patients' self-service links (CITAS_LINK_KEYS_PARAMETER,
# adapters/aws/link_keys.py): {"current": "<key id>", "keys": {"<key id>": "<secret>", ...}},
# a SecureString encrypted with the data key. Terraform writes the first ring only (key k1,
# 48 letters and digits: valid base64url of 36 bytes); `ignore_changes` keeps whatever is
# there afterwards, so a rotation done by an operator is never undone by an apply, and the
# data source's new draw on every plan changes nothing.
#
# Rotating (put-parameter --overwrite, same type and key):
# 1. Add the new key under a new id (1-8 lower-case letters or digits, e.g. k2) to "keys",
#    and make it "current". A container reads the ring when it starts and again when a link
#    names a key id it lacks (at most every 5 minutes), so it checks k2 links at once but
#    signs with k1 until it refreshes or is replaced: replace them all with any change to the
#    functions' configuration.
# 2. Keep the old key in "keys" until every link signed with it has expired. A link expires
#    when its appointment starts, so one signed just before step 1 may live as long as the
#    booking horizon (the doctors' booking_horizon_days).
# 3. Remove the old key: a link still signed with it is refused like a forged one.
data "aws_secretsmanager_random_password" "link_key" {
  password_length     = 48
  exclude_punctuation = true
  include_space       = false
}

resource "aws_ssm_parameter" "link_keys" {
  name        = "/${var.project}/${var.environment}/link-keys"
  description = "The key ring that signs citas patients' links (rotation: see lambda.tf)"
  type        = "SecureString"
  key_id      = local.data_key_arn
  value = jsonencode({
    current = "k1"
    keys = {
      k1 = data.aws_secretsmanager_random_password.link_key.random_password
    }
  })

  lifecycle {
    ignore_changes = [value]
  }
}
