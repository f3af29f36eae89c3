# Where the resources of earlier versions of this stack are now (issue 11: one map of
# functions, infra/terraform/lambda.tf). Terraform moves each one in state on the next plan, so
# an existing deployment is updated in place, never destroyed and created again. A `from`
# that is not in the state is ignored.
#
# The booking workers, their queues and alarms were keyed by country: the blocks below cover
# the default countries, PE and CL. A deployment serving other countries adds the same blocks
# for each (["XX"] -> ["booking_worker_xx"], "booking-worker-xx" -> "booking-worker-xx-errors",
# ...) before its first plan with this version.

# --- http_api ------------------------------------------------------------------------------

moved {
  from = aws_lambda_function.http_api
  to   = aws_lambda_function.this["http_api"]
}

moved {
  from = aws_cloudwatch_log_group.http_api
  to   = aws_cloudwatch_log_group.function["http_api"]
}

moved {
  from = aws_iam_role.http_api
  to   = aws_iam_role.function["http_api"]
}

moved {
  from = aws_iam_role_policy.http_api
  to   = aws_iam_role_policy.function["http_api"]
}

# --- outbox_relay --------------------------------------------------------------------------

moved {
  from = aws_lambda_function.outbox_relay
  to   = aws_lambda_function.this["outbox_relay"]
}

moved {
  from = aws_cloudwatch_log_group.outbox_relay
  to   = aws_cloudwatch_log_group.function["outbox_relay"]
}

moved {
  from = aws_iam_role.outbox_relay
  to   = aws_iam_role.function["outbox_relay"]
}

moved {
  from = aws_iam_role_policy.outbox_relay
  to   = aws_iam_role_policy.function["outbox_relay"]
}

# --- notifications -------------------------------------------------------------------------

moved {
  from = aws_lambda_function.notifications
  to   = aws_lambda_function.this["notifications"]
}

moved {
  from = aws_cloudwatch_log_group.notifications
  to   = aws_cloudwatch_log_group.function["notifications"]
}

moved {
  from = aws_iam_role.notifications
  to   = aws_iam_role.function["notifications"]
}

moved {
  from = aws_iam_role_policy.notifications
  to   = aws_iam_role_policy.function["notifications"]
}

moved {
  from = aws_lambda_event_source_mapping.events
  to   = aws_lambda_event_source_mapping.queue["notifications"]
}

# --- reminders -----------------------------------------------------------------------------

moved {
  from = aws_lambda_function.reminders
  to   = aws_lambda_function.this["reminders"]
}

moved {
  from = aws_cloudwatch_log_group.reminders
  to   = aws_cloudwatch_log_group.function["reminders"]
}

moved {
  from = aws_iam_role.reminders
  to   = aws_iam_role.function["reminders"]
}

moved {
  from = aws_iam_role_policy.reminders
  to   = aws_iam_role_policy.function["reminders"]
}

# --- booking_worker_pe ---------------------------------------------------------------------

moved {
  from = aws_lambda_function.booking_worker["PE"]
  to   = aws_lambda_function.this["booking_worker_pe"]
}

moved {
  from = aws_cloudwatch_log_group.booking_worker["PE"]
  to   = aws_cloudwatch_log_group.function["booking_worker_pe"]
}

moved {
  from = aws_iam_role.booking_worker["PE"]
  to   = aws_iam_role.function["booking_worker_pe"]
}

moved {
  from = aws_iam_role_policy.booking_worker["PE"]
  to   = aws_iam_role_policy.function["booking_worker_pe"]
}

moved {
  from = aws_lambda_event_source_mapping.booking_requests["PE"]
  to   = aws_lambda_event_source_mapping.queue["booking_worker_pe"]
}

# --- booking_worker_cl ---------------------------------------------------------------------

moved {
  from = aws_lambda_function.booking_worker["CL"]
  to   = aws_lambda_function.this["booking_worker_cl"]
}

moved {
  from = aws_cloudwatch_log_group.booking_worker["CL"]
  to   = aws_cloudwatch_log_group.function["booking_worker_cl"]
}

moved {
  from = aws_iam_role.booking_worker["CL"]
  to   = aws_iam_role.function["booking_worker_cl"]
}

moved {
  from = aws_iam_role_policy.booking_worker["CL"]
  to   = aws_iam_role_policy.function["booking_worker_cl"]
}

moved {
  from = aws_lambda_event_source_mapping.booking_requests["CL"]
  to   = aws_lambda_event_source_mapping.queue["booking_worker_cl"]
}

# --- alarms: one aws_cloudwatch_metric_alarm.this keyed by the end of each name -------------

moved {
  from = aws_cloudwatch_metric_alarm.api_5xx_rate
  to   = aws_cloudwatch_metric_alarm.this["api-5xx-rate"]
}

moved {
  from = aws_cloudwatch_metric_alarm.api_latency_p95
  to   = aws_cloudwatch_metric_alarm.this["api-latency-p95"]
}

moved {
  from = aws_cloudwatch_metric_alarm.outbox_relay_iterator_age
  to   = aws_cloudwatch_metric_alarm.this["outbox-relay-iterator-age"]
}

moved {
  from = aws_cloudwatch_metric_alarm.lambda_errors["http-api"]
  to   = aws_cloudwatch_metric_alarm.this["http-api-errors"]
}

moved {
  from = aws_cloudwatch_metric_alarm.lambda_throttles["http-api"]
  to   = aws_cloudwatch_metric_alarm.this["http-api-throttles"]
}

moved {
  from = aws_cloudwatch_metric_alarm.lambda_errors["outbox-relay"]
  to   = aws_cloudwatch_metric_alarm.this["outbox-relay-errors"]
}

moved {
  from = aws_cloudwatch_metric_alarm.lambda_throttles["outbox-relay"]
  to   = aws_cloudwatch_metric_alarm.this["outbox-relay-throttles"]
}

moved {
  from = aws_cloudwatch_metric_alarm.lambda_errors["notifications"]
  to   = aws_cloudwatch_metric_alarm.this["notifications-errors"]
}

moved {
  from = aws_cloudwatch_metric_alarm.lambda_throttles["notifications"]
  to   = aws_cloudwatch_metric_alarm.this["notifications-throttles"]
}

moved {
  from = aws_cloudwatch_metric_alarm.lambda_errors["reminders"]
  to   = aws_cloudwatch_metric_alarm.this["reminders-errors"]
}

moved {
  from = aws_cloudwatch_metric_alarm.lambda_throttles["reminders"]
  to   = aws_cloudwatch_metric_alarm.this["reminders-throttles"]
}

moved {
  from = aws_cloudwatch_metric_alarm.lambda_errors["booking-worker-pe"]
  to   = aws_cloudwatch_metric_alarm.this["booking-worker-pe-errors"]
}

moved {
  from = aws_cloudwatch_metric_alarm.lambda_throttles["booking-worker-pe"]
  to   = aws_cloudwatch_metric_alarm.this["booking-worker-pe-throttles"]
}

moved {
  from = aws_cloudwatch_metric_alarm.lambda_errors["booking-worker-cl"]
  to   = aws_cloudwatch_metric_alarm.this["booking-worker-cl-errors"]
}

moved {
  from = aws_cloudwatch_metric_alarm.lambda_throttles["booking-worker-cl"]
  to   = aws_cloudwatch_metric_alarm.this["booking-worker-cl-throttles"]
}

moved {
  from = aws_cloudwatch_metric_alarm.dead_letters["events-dlq"]
  to   = aws_cloudwatch_metric_alarm.this["events-dlq-not-empty"]
}

moved {
  from = aws_cloudwatch_metric_alarm.dead_letters["outbox-relay-failures"]
  to   = aws_cloudwatch_metric_alarm.this["outbox-relay-failures-not-empty"]
}

moved {
  from = aws_cloudwatch_metric_alarm.dead_letters["reminders-dlq"]
  to   = aws_cloudwatch_metric_alarm.this["reminders-dlq-not-empty"]
}

moved {
  from = aws_cloudwatch_metric_alarm.dead_letters["booking-requests-pe-dlq"]
  to   = aws_cloudwatch_metric_alarm.this["booking-requests-pe-dlq-not-empty"]
}

moved {
  from = aws_cloudwatch_metric_alarm.dead_letters["booking-requests-cl-dlq"]
  to   = aws_cloudwatch_metric_alarm.this["booking-requests-cl-dlq-not-empty"]
}

moved {
  from = aws_cloudwatch_metric_alarm.queue_age["events"]
  to   = aws_cloudwatch_metric_alarm.this["events-oldest-message-age"]
}

moved {
  from = aws_cloudwatch_metric_alarm.queue_age["booking-requests-pe"]
  to   = aws_cloudwatch_metric_alarm.this["booking-requests-pe-oldest-message-age"]
}

moved {
  from = aws_cloudwatch_metric_alarm.queue_age["booking-requests-cl"]
  to   = aws_cloudwatch_metric_alarm.this["booking-requests-cl-oldest-message-age"]
}

# --- the API key: the stack's one key, usage plan and plan key became the demo clinic's -------
#
# One key, plan and plan key per clinic now (aws_api_gateway_*.clinic, api.tf). The old key
# keeps its value, so the apps that send it keep working, as the `demo` clinic (the default of
# var.clinics). A deployment whose clinics do not include `demo` writes its existing clinic's
# id instead of "demo" in the three blocks below before its first plan with this version.

moved {
  from = aws_api_gateway_api_key.citas
  to   = aws_api_gateway_api_key.clinic["demo"]
}

moved {
  from = aws_api_gateway_usage_plan.citas
  to   = aws_api_gateway_usage_plan.clinic["demo"]
}

moved {
  from = aws_api_gateway_usage_plan_key.citas
  to   = aws_api_gateway_usage_plan_key.clinic["demo"]
}

# --- what a dev stack pays for became optional (enable_waf, use_customer_managed_keys,
# enable_alarms): the single instances became the first of a count ---------------------------
#
# Where the variable is off (every environment but prod, unless set), the next apply then
# destroys them. KMS keeps a key 30 days before deleting it; log data written while a group
# used the observability key stays encrypted with it and is unreadable once the key is gone:
# set use_customer_managed_keys = true to keep the keys.

moved {
  from = aws_kms_key.citas
  to   = aws_kms_key.citas[0]
}

moved {
  from = aws_kms_alias.citas
  to   = aws_kms_alias.citas[0]
}

moved {
  from = aws_kms_key.observability
  to   = aws_kms_key.observability[0]
}

moved {
  from = aws_kms_alias.observability
  to   = aws_kms_alias.observability[0]
}

moved {
  from = aws_wafv2_web_acl.api
  to   = aws_wafv2_web_acl.api[0]
}

moved {
  from = aws_wafv2_web_acl_association.api
  to   = aws_wafv2_web_acl_association.api[0]
}

moved {
  from = aws_cloudwatch_log_group.waf
  to   = aws_cloudwatch_log_group.waf[0]
}

moved {
  from = aws_cloudwatch_log_resource_policy.waf
  to   = aws_cloudwatch_log_resource_policy.waf[0]
}

moved {
  from = aws_wafv2_web_acl_logging_configuration.api
  to   = aws_wafv2_web_acl_logging_configuration.api[0]
}

moved {
  from = aws_sns_topic.alarms
  to   = aws_sns_topic.alarms[0]
}
