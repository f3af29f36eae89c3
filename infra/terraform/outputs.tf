output "api_url" {
  description = "Base URL of the API (the stage's invoke URL); send a clinic's `x-api-key` with every request."
  value       = aws_api_gateway_stage.citas.invoke_url
}

output "clinic_api_key_ids" {
  description = "Id of each clinic's API key, by clinic id (the apiKeyId of the API's access log lines)."
  value       = { for id, key in aws_api_gateway_api_key.clinic : id => key.id }
}

output "clinic_api_keys" {
  description = "Each clinic's API key, the x-api-key its apps send, by clinic id (`terraform output -json clinic_api_keys`)."
  value       = { for id, key in aws_api_gateway_api_key.clinic : id => key.value }
  sensitive   = true
}

output "table_name" {
  description = "The DynamoDB table."
  value       = aws_dynamodb_table.citas.name
}

output "events_queue_name" {
  description = "The events FIFO queue."
  value       = aws_sqs_queue.events.name
}

output "events_queue_url" {
  description = "URL of the events FIFO queue."
  value       = aws_sqs_queue.events.url
}

output "booking_queue_names" {
  description = "Booking-request FIFO queue of each country."
  value       = { for c, q in aws_sqs_queue.booking_requests : c => q.name }
}

output "booking_queue_urls" {
  description = "URL of the booking-request FIFO queue of each country."
  value       = { for c, q in aws_sqs_queue.booking_requests : c => q.url }
}

output "dead_letter_queue_urls" {
  description = "URL of every dead-letter queue, by role."
  value = merge(
    {
      events                = aws_sqs_queue.events_dlq.url
      outbox_relay_failures = aws_sqs_queue.outbox_relay_failures.url
      reminders             = aws_sqs_queue.reminders_dlq.url
      offers_sweeper        = aws_sqs_queue.offers_sweeper_dlq.url
      inbound_sms           = aws_sqs_queue.inbound_sms_dlq.url
      inbound_whatsapp      = aws_sqs_queue.inbound_whatsapp_dlq.url
    },
    { for c, q in aws_sqs_queue.booking_requests_dlq : "booking_requests_${lower(c)}" => q.url },
  )
}

output "function_names" {
  description = "Every Lambda function, by role."
  value       = local.alarmed_functions
}

output "alarm_topic_arn" {
  description = "SNS topic the alarms notify; subscribe more endpoints to it (null without alarms)."
  value       = one(aws_sns_topic.alarms[*].arn)
}

output "public_base_url" {
  description = "Base of patients' links (`<public_base_url>/p/<token>`) for the clinics without a public_base_url of their own: the stage URL."
  value       = local.public_base_url
}

output "inbound_sms_topic_arn" {
  description = "SNS topic of patients' SMS replies: every two-way number's two-way channel (update-phone-number --two-way-enabled --two-way-channel-arn)."
  value       = aws_sns_topic.inbound_sms.arn
}

output "inbound_whatsapp_topic_arn" {
  description = "SNS topic of the WhatsApp Business Account's events: its event destination (put-whatsapp-business-account-event-destinations)."
  value       = aws_sns_topic.inbound_whatsapp.arn
}

output "link_keys_parameter" {
  description = "SSM SecureString holding the key ring of patients' links; rotate it as lambda.tf describes."
  value       = aws_ssm_parameter.link_keys.name
}
