# Alarms go to one SNS topic (encrypted; an e-mail subscription when var.alarm_email is set).
resource "aws_sns_topic" "alarms" {
  name              = "${local.name_prefix}-alarms"
  kms_master_key_id = aws_kms_key.observability.arn
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count = var.alarm_email != "" ? 1 : 0

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

locals {
  alarm_actions = [aws_sns_topic.alarms.arn]

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
    },
    { for c, q in aws_sqs_queue.booking_requests_dlq : "booking-requests-${lower(c)}-dlq" => q.name },
  )

  # Queues whose oldest message tells how far behind their consumer is.
  worked_queues = merge(
    { events = aws_sqs_queue.events.name },
    { for c, q in aws_sqs_queue.booking_requests : "booking-requests-${lower(c)}" => q.name },
  )
}

# --- API -------------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "api_5xx_rate" {
  alarm_name          = "${local.name_prefix}-api-5xx-rate"
  alarm_description   = "More than ${var.api_5xx_rate_threshold * 100}% of API requests failed with a 5XX in 5 minutes."
  namespace           = "AWS/ApiGateway"
  metric_name         = "5XXError"
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.api_5xx_rate_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  dimensions = {
    ApiName = aws_api_gateway_rest_api.citas.name
    Stage   = aws_api_gateway_stage.citas.stage_name
  }
}

resource "aws_cloudwatch_metric_alarm" "api_latency_p95" {
  alarm_name          = "${local.name_prefix}-api-latency-p95"
  alarm_description   = "API p95 latency above ${var.api_latency_p95_threshold_ms} ms in 2 of the last 3 five-minute periods."
  namespace           = "AWS/ApiGateway"
  metric_name         = "Latency"
  extended_statistic  = "p95"
  period              = 300
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  threshold           = var.api_latency_p95_threshold_ms
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  dimensions = {
    ApiName = aws_api_gateway_rest_api.citas.name
    Stage   = aws_api_gateway_stage.citas.stage_name
  }
}

# --- functions -------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "lambda_errors" {
  for_each = local.alarmed_functions

  alarm_name          = "${local.name_prefix}-${each.key}-errors"
  alarm_description   = "${each.value} failed invocations in 5 minutes."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  dimensions = {
    FunctionName = each.value
  }
}

resource "aws_cloudwatch_metric_alarm" "lambda_throttles" {
  for_each = local.alarmed_functions

  alarm_name          = "${local.name_prefix}-${each.key}-throttles"
  alarm_description   = "${each.value} was throttled (reserved concurrency reached) in 5 minutes."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  dimensions = {
    FunctionName = each.value
  }
}

# The relay falling behind the table's stream delays every message to patients.
resource "aws_cloudwatch_metric_alarm" "outbox_relay_iterator_age" {
  alarm_name          = "${local.name_prefix}-outbox-relay-iterator-age"
  alarm_description   = "The outbox relay is more than a minute behind the table's stream."
  namespace           = "AWS/Lambda"
  metric_name         = "IteratorAge"
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 60000
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  dimensions = {
    FunctionName = aws_lambda_function.this["outbox_relay"].function_name
  }
}

# --- queues ----------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  for_each = local.dead_letter_queues

  alarm_name          = "${local.name_prefix}-${each.key}-not-empty"
  alarm_description   = "${each.value} holds messages that were given up on; inspect and redrive them."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  dimensions = {
    QueueName = each.value
  }
}

resource "aws_cloudwatch_metric_alarm" "queue_age" {
  for_each = local.worked_queues

  alarm_name          = "${local.name_prefix}-${each.key}-oldest-message-age"
  alarm_description   = "The oldest message of ${each.value} waited more than ${var.queue_age_threshold_seconds} s: its consumer is behind or failing."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.queue_age_threshold_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  dimensions = {
    QueueName = each.value
  }
}
