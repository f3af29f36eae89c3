locals {
  name_prefix       = "${var.project}-${var.environment}"
  events_queue_name = "${local.name_prefix}-events.fifo"
  events_dlq_name   = "${local.name_prefix}-events-dlq.fifo"

  booking_queue_names = {
    for country in var.countries : country => "${local.name_prefix}-booking-requests-${lower(country)}.fifo"
  }
  booking_dlq_names = {
    for country in var.countries : country => "${local.name_prefix}-booking-requests-${lower(country)}-dlq.fifo"
  }

  # Dead-letter queues keep a message as long as SQS allows, so nothing poisoned is lost
  # before someone looks at it.
  dlq_retention_seconds = 1209600
}

# Domain events published by the outbox relay. MessageGroupId = appointment id keeps each
# appointment's events in order; MessageDeduplicationId = event id.
resource "aws_sqs_queue" "events_dlq" {
  name                        = local.events_dlq_name
  fifo_queue                  = true
  content_based_deduplication = false
  message_retention_seconds   = local.dlq_retention_seconds
  kms_master_key_id           = local.data_key_arn
  sqs_managed_sse_enabled     = local.sqs_managed_sse
}

resource "aws_sqs_queue" "events" {
  name                        = local.events_queue_name
  fifo_queue                  = true
  content_based_deduplication = false
  visibility_timeout_seconds  = 60
  message_retention_seconds   = var.message_retention_seconds
  kms_master_key_id           = local.data_key_arn
  sqs_managed_sse_enabled     = local.sqs_managed_sse

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.events_dlq.arn
    maxReceiveCount     = var.max_receive_count
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "events_dlq" {
  queue_url = aws_sqs_queue.events_dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.events.arn]
  })
}

# Asynchronous booking requests, one queue per country, so each country's worker books in
# order per doctor (MessageGroupId = doctor id).
resource "aws_sqs_queue" "booking_requests_dlq" {
  for_each = toset(var.countries)

  name                        = local.booking_dlq_names[each.key]
  fifo_queue                  = true
  content_based_deduplication = false
  message_retention_seconds   = local.dlq_retention_seconds
  kms_master_key_id           = local.data_key_arn
  sqs_managed_sse_enabled     = local.sqs_managed_sse
}

resource "aws_sqs_queue" "booking_requests" {
  for_each = toset(var.countries)

  name                        = local.booking_queue_names[each.key]
  fifo_queue                  = true
  content_based_deduplication = false
  visibility_timeout_seconds  = 60
  message_retention_seconds   = var.message_retention_seconds
  kms_master_key_id           = local.data_key_arn
  sqs_managed_sse_enabled     = local.sqs_managed_sse

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.booking_requests_dlq[each.key].arn
    maxReceiveCount     = var.max_receive_count
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "booking_requests_dlq" {
  for_each = toset(var.countries)

  queue_url = aws_sqs_queue.booking_requests_dlq[each.key].id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.booking_requests[each.key].arn]
  })
}
