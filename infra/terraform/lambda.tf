locals {
  # `make package` writes the artifact here; every function runs the same zip with another
  # handler.
  lambda_zip = coalesce(var.lambda_zip, "${path.module}/../../dist/lambda.zip")
  # A missing zip is reported by the precondition of aws_lambda_function.http_api, with the
  # command that builds it, instead of by a bare "no such file" from filebase64sha256.
  lambda_zip_hash = fileexists(local.lambda_zip) ? filebase64sha256(local.lambda_zip) : null

  function_names = {
    http_api      = "${local.name_prefix}-http-api"
    outbox_relay  = "${local.name_prefix}-outbox-relay"
    notifications = "${local.name_prefix}-notifications"
    reminders     = "${local.name_prefix}-reminders"
  }
  booking_worker_names = {
    for country in var.countries : country => "${local.name_prefix}-booking-worker-${lower(country)}"
  }

  # CITAS_COUNTRIES: `PE=America/Lima,CL=America/Santiago`.
  countries_setting = join(",", [for c in var.countries : "${c}=${var.country_time_zones[c]}"])
  # CITAS_BOOKING_QUEUE_URLS: `PE=https://...,CL=https://...`.
  booking_queue_urls_setting = join(",", [for c in var.countries : "${c}=${aws_sqs_queue.booking_requests[c].url}"])

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

resource "aws_cloudwatch_log_group" "http_api" {
  name              = "/aws/lambda/${local.function_names.http_api}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.observability.arn
}

resource "aws_cloudwatch_log_group" "outbox_relay" {
  name              = "/aws/lambda/${local.function_names.outbox_relay}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.observability.arn
}

resource "aws_cloudwatch_log_group" "booking_worker" {
  for_each = local.booking_worker_names

  name              = "/aws/lambda/${each.value}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.observability.arn
}

resource "aws_cloudwatch_log_group" "notifications" {
  name              = "/aws/lambda/${local.function_names.notifications}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.observability.arn
}

resource "aws_cloudwatch_log_group" "reminders" {
  name              = "/aws/lambda/${local.function_names.reminders}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.observability.arn
}

# --- queues of failed invocations (not in sqs.tf: that file holds only the queues the code
# talks to, which `citas provision` creates locally) ---------------------------------------

# Metadata of outbox batches the relay could not publish after every retry. The events stay
# in the table as outbox items, so nothing is lost: an operator republishes them.
resource "aws_sqs_queue" "outbox_relay_failures" {
  name                      = "${local.name_prefix}-outbox-relay-failures"
  message_retention_seconds = local.dlq_retention_seconds
  kms_master_key_id         = aws_kms_key.citas.arn
}

# Reminder runs that failed; the next run (15 minutes later) catches up on its own.
resource "aws_sqs_queue" "reminders_dlq" {
  name                      = "${local.name_prefix}-reminders-dlq"
  message_retention_seconds = local.dlq_retention_seconds
  kms_master_key_id         = aws_kms_key.citas.arn
}

# --- functions -----------------------------------------------------------------------------

# The HTTP API behind API Gateway (REST proxy).
resource "aws_lambda_function" "http_api" {
  #checkov:skip=CKV_AWS_116:Invoked synchronously by API Gateway: the caller gets the error, there is no asynchronous event to dead-letter.
  #checkov:skip=CKV_AWS_117:Talks only to public AWS endpoints (DynamoDB, SQS); a VPC would add NAT or endpoint cost and cold-start latency without isolating anything.
  #checkov:skip=CKV_AWS_272:The artifact is built reproducibly by `make package` and pinned by source_code_hash; code signing needs an AWS Signer profile this stack does not assume.
  function_name                  = local.function_names.http_api
  description                    = "citas HTTP API (API Gateway REST proxy)"
  role                           = aws_iam_role.http_api.arn
  handler                        = "entrypoints.lambda.http_api.handler"
  runtime                        = "python3.12"
  architectures                  = ["arm64"]
  filename                       = local.lambda_zip
  source_code_hash               = local.lambda_zip_hash
  memory_size                    = var.lambda_memory_mb.http_api
  timeout                        = var.lambda_timeout_seconds.http_api
  reserved_concurrent_executions = var.lambda_reserved_concurrency.http_api
  kms_key_arn                    = aws_kms_key.citas.arn

  environment {
    variables = {
      CITAS_BACKEND                = "aws"
      CITAS_COUNTRIES              = local.countries_setting
      CITAS_TABLE_NAME             = aws_dynamodb_table.citas.name
      CITAS_BOOKING_QUEUE_URLS     = local.booking_queue_urls_setting
      CITAS_PAGE_TOKEN_KEY         = aws_ssm_parameter.page_token_key.value
      POWERTOOLS_SERVICE_NAME      = var.project
      POWERTOOLS_METRICS_NAMESPACE = var.project
    }
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.http_api.name
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

  depends_on = [aws_iam_role_policy.http_api]
}

# Publishes the outbox items of the table's stream to the events FIFO queue.
resource "aws_lambda_function" "outbox_relay" {
  #checkov:skip=CKV_AWS_116:Invoked by a DynamoDB stream event source mapping, whose on-failure destination (aws_sqs_queue.outbox_relay_failures) takes the place of a DLQ.
  #checkov:skip=CKV_AWS_117:Talks only to public AWS endpoints (DynamoDB, SQS); a VPC would add NAT or endpoint cost and cold-start latency without isolating anything.
  #checkov:skip=CKV_AWS_272:The artifact is built reproducibly by `make package` and pinned by source_code_hash; code signing needs an AWS Signer profile this stack does not assume.
  function_name                  = local.function_names.outbox_relay
  description                    = "citas outbox relay: table stream to the events FIFO queue"
  role                           = aws_iam_role.outbox_relay.arn
  handler                        = "entrypoints.lambda.outbox_relay.handler"
  runtime                        = "python3.12"
  architectures                  = ["arm64"]
  filename                       = local.lambda_zip
  source_code_hash               = local.lambda_zip_hash
  memory_size                    = var.lambda_memory_mb.outbox_relay
  timeout                        = var.lambda_timeout_seconds.outbox_relay
  reserved_concurrent_executions = var.lambda_reserved_concurrency.outbox_relay
  kms_key_arn                    = aws_kms_key.citas.arn

  environment {
    variables = {
      CITAS_BACKEND                = "aws"
      CITAS_COUNTRIES              = local.countries_setting
      CITAS_TABLE_NAME             = aws_dynamodb_table.citas.name
      CITAS_EVENTS_QUEUE_URL       = aws_sqs_queue.events.url
      POWERTOOLS_SERVICE_NAME      = var.project
      POWERTOOLS_METRICS_NAMESPACE = var.project
    }
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.outbox_relay.name
    application_log_level = var.log_level
    system_log_level      = "WARN"
  }

  depends_on = [aws_iam_role_policy.outbox_relay]
}

# One booking worker per country, each reading only its country's FIFO queue.
resource "aws_lambda_function" "booking_worker" {
  #checkov:skip=CKV_AWS_116:Invoked by an SQS event source mapping; failed messages go to the source queue's own dead-letter queue (redrive policy in sqs.tf).
  #checkov:skip=CKV_AWS_117:Talks only to public AWS endpoints (DynamoDB, SQS); a VPC would add NAT or endpoint cost and cold-start latency without isolating anything.
  #checkov:skip=CKV_AWS_272:The artifact is built reproducibly by `make package` and pinned by source_code_hash; code signing needs an AWS Signer profile this stack does not assume.
  for_each = local.booking_worker_names

  function_name                  = each.value
  description                    = "citas booking worker for ${each.key}"
  role                           = aws_iam_role.booking_worker[each.key].arn
  handler                        = "entrypoints.lambda.booking_worker.handler"
  runtime                        = "python3.12"
  architectures                  = ["arm64"]
  filename                       = local.lambda_zip
  source_code_hash               = local.lambda_zip_hash
  memory_size                    = var.lambda_memory_mb.booking_worker
  timeout                        = var.lambda_timeout_seconds.booking_worker
  reserved_concurrent_executions = var.lambda_reserved_concurrency.booking_worker
  kms_key_arn                    = aws_kms_key.citas.arn

  environment {
    variables = {
      CITAS_BACKEND                = "aws"
      CITAS_COUNTRIES              = local.countries_setting
      CITAS_TABLE_NAME             = aws_dynamodb_table.citas.name
      CITAS_WORKER_COUNTRY         = each.key
      POWERTOOLS_SERVICE_NAME      = var.project
      POWERTOOLS_METRICS_NAMESPACE = var.project
    }
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.booking_worker[each.key].name
    application_log_level = var.log_level
    system_log_level      = "WARN"
  }

  depends_on = [aws_iam_role_policy.booking_worker]
}

# Sends the patients' SMS for the events of the events queue.
resource "aws_lambda_function" "notifications" {
  #checkov:skip=CKV_AWS_116:Invoked by an SQS event source mapping; failed messages go to the events queue's own dead-letter queue (redrive policy in sqs.tf).
  #checkov:skip=CKV_AWS_117:Talks only to public AWS endpoints (DynamoDB, SNS); a VPC would add NAT or endpoint cost and cold-start latency without isolating anything.
  #checkov:skip=CKV_AWS_272:The artifact is built reproducibly by `make package` and pinned by source_code_hash; code signing needs an AWS Signer profile this stack does not assume.
  function_name                  = local.function_names.notifications
  description                    = "citas patient notifications (SMS) from the events queue"
  role                           = aws_iam_role.notifications.arn
  handler                        = "entrypoints.lambda.notifications.handler"
  runtime                        = "python3.12"
  architectures                  = ["arm64"]
  filename                       = local.lambda_zip
  source_code_hash               = local.lambda_zip_hash
  memory_size                    = var.lambda_memory_mb.notifications
  timeout                        = var.lambda_timeout_seconds.notifications
  reserved_concurrent_executions = var.lambda_reserved_concurrency.notifications
  kms_key_arn                    = aws_kms_key.citas.arn

  environment {
    variables = {
      CITAS_BACKEND                = "aws"
      CITAS_COUNTRIES              = local.countries_setting
      CITAS_TABLE_NAME             = aws_dynamodb_table.citas.name
      CITAS_NOTIFIER               = "sns"
      POWERTOOLS_SERVICE_NAME      = var.project
      POWERTOOLS_METRICS_NAMESPACE = var.project
    }
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.notifications.name
    application_log_level = var.log_level
    system_log_level      = "WARN"
  }

  depends_on = [aws_iam_role_policy.notifications]
}

# Records the reminders that are due, every 15 minutes.
resource "aws_lambda_function" "reminders" {
  #checkov:skip=CKV_AWS_117:Talks only to public AWS endpoints (DynamoDB); a VPC would add NAT or endpoint cost and cold-start latency without isolating anything.
  #checkov:skip=CKV_AWS_272:The artifact is built reproducibly by `make package` and pinned by source_code_hash; code signing needs an AWS Signer profile this stack does not assume.
  function_name                  = local.function_names.reminders
  description                    = "citas reminders: records ReminderDue for appointments 24 h ahead"
  role                           = aws_iam_role.reminders.arn
  handler                        = "entrypoints.lambda.reminders.handler"
  runtime                        = "python3.12"
  architectures                  = ["arm64"]
  filename                       = local.lambda_zip
  source_code_hash               = local.lambda_zip_hash
  memory_size                    = var.lambda_memory_mb.reminders
  timeout                        = var.lambda_timeout_seconds.reminders
  reserved_concurrent_executions = var.lambda_reserved_concurrency.reminders
  kms_key_arn                    = aws_kms_key.citas.arn

  environment {
    variables = {
      CITAS_BACKEND                = "aws"
      CITAS_COUNTRIES              = local.countries_setting
      CITAS_TABLE_NAME             = aws_dynamodb_table.citas.name
      POWERTOOLS_SERVICE_NAME      = var.project
      POWERTOOLS_METRICS_NAMESPACE = var.project
    }
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.reminders_dlq.arn
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.reminders.name
    application_log_level = var.log_level
    system_log_level      = "WARN"
  }

  depends_on = [aws_iam_role_policy.reminders]
}

# A failed run is not retried: the next scheduled run, 15 minutes later, catches up (runs
# missed for up to 6 h are), and a retry racing it would only do the same work twice.
resource "aws_lambda_function_event_invoke_config" "reminders" {
  function_name                = aws_lambda_function.reminders.function_name
  maximum_retry_attempts       = 0
  maximum_event_age_in_seconds = 900
}

# --- event sources -------------------------------------------------------------------------

# New outbox items only: the filter drops every other item of the table and the relay's own
# deletes (REMOVE), so the relay is invoked once per committed event.
resource "aws_lambda_event_source_mapping" "outbox_stream" {
  event_source_arn                   = aws_dynamodb_table.citas.stream_arn
  function_name                      = aws_lambda_function.outbox_relay.arn
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

resource "aws_lambda_event_source_mapping" "booking_requests" {
  for_each = toset(var.countries)

  event_source_arn        = aws_sqs_queue.booking_requests[each.key].arn
  function_name           = aws_lambda_function.booking_worker[each.key].arn
  batch_size              = 10
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = local.sqs_max_concurrency.booking_worker
  }
}

resource "aws_lambda_event_source_mapping" "events" {
  event_source_arn        = aws_sqs_queue.events.arn
  function_name           = aws_lambda_function.notifications.arn
  batch_size              = 10
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = local.sqs_max_concurrency.notifications
  }
}

resource "aws_cloudwatch_event_rule" "reminders" {
  name                = "${local.name_prefix}-reminders"
  description         = "Runs the citas reminders every 15 minutes."
  schedule_expression = "rate(15 minutes)"
}

resource "aws_cloudwatch_event_target" "reminders" {
  rule = aws_cloudwatch_event_rule.reminders.name
  arn  = aws_lambda_function.reminders.arn
}

resource "aws_lambda_permission" "reminders_schedule" {
  statement_id  = "AllowEventBridgeSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.reminders.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.reminders.arn
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
  key_id      = aws_kms_key.citas.arn
  value       = data.aws_secretsmanager_random_password.page_token_key.random_password

  lifecycle {
    ignore_changes = [value]
  }
}
