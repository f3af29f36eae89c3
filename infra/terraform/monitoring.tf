# Alarms go to one SNS topic (encrypted with the observability key when the stack has its
# own keys; an e-mail subscription when var.alarm_email is set). Without alarms
# (var.enable_alarms, prod by default) there is neither.
resource "aws_sns_topic" "alarms" {
  count = local.enable_alarms ? 1 : 0

  name              = "${local.name_prefix}-alarms"
  kms_master_key_id = local.observability_key_arn
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count = local.enable_alarms && var.alarm_email != "" ? 1 : 0

  topic_arn = aws_sns_topic.alarms[0].arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

locals {
  enable_alarms = coalesce(var.enable_alarms, var.environment == "prod")
  alarm_actions = aws_sns_topic.alarms[*].arn

  # Every function, by a key that reads well in alarm names (http-api, booking-worker-pe, ...).
  alarmed_functions = {
    for key, fn in aws_lambda_function.this : replace(key, "_", "-") => fn.function_name
  }

  # Every dead-letter queue: a message there is work that was given up on.
  dead_letter_queues = merge(
    {
      events-dlq            = aws_sqs_queue.events_dlq.name
      outbox-relay-failures = aws_sqs_queue.outbox_relay_failures.name
      reminders-dlq         = aws_sqs_queue.reminders_dlq.name
      offers-sweeper-dlq    = aws_sqs_queue.offers_sweeper_dlq.name
      inbound-sms-dlq       = aws_sqs_queue.inbound_sms_dlq.name
      inbound-whatsapp-dlq  = aws_sqs_queue.inbound_whatsapp_dlq.name
    },
    { for c, q in aws_sqs_queue.booking_requests_dlq : "booking-requests-${lower(c)}-dlq" => q.name },
  )

  # Queues whose oldest message tells how far behind their consumer is.
  worked_queues = merge(
    { events = aws_sqs_queue.events.name },
    { for c, q in aws_sqs_queue.booking_requests : "booking-requests-${lower(c)}" => q.name },
  )

  # Every alarm (aws_cloudwatch_metric_alarm.this), by the end of its name:
  # `<project>-<environment>-<key>`. Each says what it watches and when it fires; all of them
  # look at 5-minute periods (one of them unless `evaluation_periods` says otherwise), fire
  # above their threshold, count missing data as fine, and notify the topic when they fire
  # and when they clear.
  alarms = merge(
    local.api_alarms,
    local.function_error_alarms,
    local.function_throttle_alarms,
    local.outbox_relay_alarms,
    local.dead_letter_alarms,
    local.queue_age_alarms,
  )

  api_dimensions = {
    ApiName = aws_api_gateway_rest_api.citas.name
    Stage   = aws_api_gateway_stage.citas.stage_name
  }

  api_alarms = {
    api-5xx-rate = {
      description = "More than ${var.api_5xx_rate_threshold * 100}% of API requests failed with a 5XX in 5 minutes."
      namespace   = "AWS/ApiGateway"
      metric_name = "5XXError"
      statistic   = "Average"
      threshold   = var.api_5xx_rate_threshold
      dimensions  = local.api_dimensions
    }
    api-latency-p95 = {
      description         = "API p95 latency above ${var.api_latency_p95_threshold_ms} ms in 2 of the last 3 five-minute periods."
      namespace           = "AWS/ApiGateway"
      metric_name         = "Latency"
      extended_statistic  = "p95"
      evaluation_periods  = 3
      datapoints_to_alarm = 2
      threshold           = var.api_latency_p95_threshold_ms
      dimensions          = local.api_dimensions
    }
  }

  function_error_alarms = {
    for key, name in local.alarmed_functions : "${key}-errors" => {
      description = "${name} failed invocations in 5 minutes."
      namespace   = "AWS/Lambda"
      metric_name = "Errors"
      statistic   = "Sum"
      threshold   = 0
      dimensions  = { FunctionName = name }
    }
  }

  function_throttle_alarms = {
    for key, name in local.alarmed_functions : "${key}-throttles" => {
      description = "${name} was throttled (reserved concurrency reached) in 5 minutes."
      namespace   = "AWS/Lambda"
      metric_name = "Throttles"
      statistic   = "Sum"
      threshold   = 0
      dimensions  = { FunctionName = name }
    }
  }

  # The relay falling behind the table's stream delays every message to patients.
  outbox_relay_alarms = {
    outbox-relay-iterator-age = {
      description = "The outbox relay is more than a minute behind the table's stream."
      namespace   = "AWS/Lambda"
      metric_name = "IteratorAge"
      statistic   = "Maximum"
      threshold   = 60000
      dimensions  = { FunctionName = aws_lambda_function.this["outbox_relay"].function_name }
    }
  }

  dead_letter_alarms = {
    for key, name in local.dead_letter_queues : "${key}-not-empty" => {
      description = "${name} holds messages that were given up on; inspect and redrive them."
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesVisible"
      statistic   = "Maximum"
      threshold   = 0
      dimensions  = { QueueName = name }
    }
  }

  queue_age_alarms = {
    for key, name in local.worked_queues : "${key}-oldest-message-age" => {
      description = "The oldest message of ${name} waited more than ${var.queue_age_threshold_seconds} s: its consumer is behind or failing."
      namespace   = "AWS/SQS"
      metric_name = "ApproximateAgeOfOldestMessage"
      statistic   = "Maximum"
      threshold   = var.queue_age_threshold_seconds
      dimensions  = { QueueName = name }
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = { for key, alarm in local.alarms : key => alarm if local.enable_alarms }

  alarm_name          = "${local.name_prefix}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric_name
  statistic           = lookup(each.value, "statistic", null)
  extended_statistic  = lookup(each.value, "extended_statistic", null)
  period              = 300
  evaluation_periods  = lookup(each.value, "evaluation_periods", 1)
  datapoints_to_alarm = lookup(each.value, "datapoints_to_alarm", null)
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  dimensions          = each.value.dimensions
}

