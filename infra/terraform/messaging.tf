# Patients' messages through AWS End User Messaging (CONTRACT.md "Patients answer"):
# - out: SMS with End User Messaging SMS (sms-voice:SendTextMessage) and WhatsApp templates
#   with End User Messaging Social (social-messaging:SendWhatsAppMessage), from the sending
#   identities below only (iam.tf, data.aws_iam_policy_document.send_messages);
# - in: each service publishes to a standard SNS topic of its own (FIFO topics are not
#   supported by either), which invokes that channel's function.
#
# The numbers themselves are not managed here. Once per number, point them at the topics
# (outputs inbound_sms_topic_arn, inbound_whatsapp_topic_arn):
# - SMS: `aws pinpoint-sms-voice-v2 update-phone-number --phone-number-id <id>
#   --two-way-enabled --two-way-channel-arn <inbound_sms_topic_arn>` (no two-way channel
#   role: the topic policy below lets the service publish);
# - WhatsApp: `aws socialmessaging put-whatsapp-business-account-event-destinations --id
#   <waba id> --event-destinations eventDestinationArn=<inbound_whatsapp_topic_arn>`.

locals {
  # --- sending identities: the resources SendTextMessage and SendWhatsAppMessage are
  # authorised against (Service Authorization Reference, "AWS End User Messaging SMS and
  # Voice V2" and "AWS End User Messaging Social").

  # SendTextMessage: a phone-number/<PhoneNumberId>, pool/<PoolId> or
  # sender-id/<SenderId>/<IsoCountryCode> ARN, the origination identity's. An id is turned
  # into its ARN; var.sms_origination_identity accepts no other form.
  sms_arn_prefix = "arn:${data.aws_partition.current.partition}:sms-voice:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}"
  sms_origination_arn = (
    var.sms_origination_identity == null ? null
    : startswith(var.sms_origination_identity, "arn:") ? var.sms_origination_identity
    : startswith(var.sms_origination_identity, "pool-") ? "${local.sms_arn_prefix}:pool/${var.sms_origination_identity}"
    : "${local.sms_arn_prefix}:phone-number/${var.sms_origination_identity}"
  )
  # A clinic names its own number in E.164 (what patients see and reply to), which is not
  # the number's id its ARN is made of, and no data source of the provider looks one up: a
  # clinic's own number is granted as any phone number of this account and region.
  clinic_sms_numbers = [for c in values(var.clinics) : c.sms_number if c.sms_number != null]
  sms_origination_arns = concat(
    local.sms_origination_arn == null ? [] : [local.sms_origination_arn],
    length(local.clinic_sms_numbers) == 0 ? [] : ["${local.sms_arn_prefix}:phone-number/*"],
  )

  # SendWhatsAppMessage: phone-number-id/<id>, the ARN of `phone-number-id-<id>`.
  whatsapp_phone_number_ids = [
    for id in concat([var.whatsapp_phone_number_id], [for c in values(var.clinics) : c.whatsapp_phone_number_id]) : id if id != null
  ]
  whatsapp_phone_number_arns = distinct([
    for id in local.whatsapp_phone_number_ids : startswith(id, "arn:") ? id : "arn:${data.aws_partition.current.partition}:social-messaging:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:phone-number-id/${trimprefix(id, "phone-number-id-")}"
  ])

  # --- inbound: each channel's topic, the service that publishes to it, and its function.
  inbound_topic_names = {
    inbound_sms      = "${local.name_prefix}-inbound-sms"
    inbound_whatsapp = "${local.name_prefix}-inbound-whatsapp"
  }
  # Built from the names, not read from the topics: the data key's policy names them
  # (kms.tf), and the topics are encrypted with that key.
  inbound_topic_arns = {
    for key, name in local.inbound_topic_names : key => "arn:${data.aws_partition.current.partition}:sns:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:${name}"
  }
  inbound_publishers = {
    inbound_sms      = "sms-voice"
    inbound_whatsapp = "social-messaging"
  }
  inbound_topics = {
    inbound_sms      = aws_sns_topic.inbound_sms
    inbound_whatsapp = aws_sns_topic.inbound_whatsapp
  }
}

# Two-way SMS: every message patients send to the account's two-way numbers.
resource "aws_sns_topic" "inbound_sms" {
  name              = local.inbound_topic_names["inbound_sms"]
  kms_master_key_id = local.data_key_arn
}

# WhatsApp: every event of the WhatsApp Business Account (messages, delivery statuses,
# template reviews); the function keeps the messages and the failed deliveries.
resource "aws_sns_topic" "inbound_whatsapp" {
  name              = local.inbound_topic_names["inbound_whatsapp"]
  kms_master_key_id = local.data_key_arn
}

# Only the channel's own service, acting for this account, may publish. The conditions are
# the ones AWS recommends against the confused deputy problem (End User Messaging SMS User
# Guide, "Amazon SNS access policy" and "Topic policies for Amazon SNS topics"; End User
# Messaging Social User Guide, "Add a message and event destination"): the source account,
# and a source ARN of that service in this account and region.
data "aws_iam_policy_document" "inbound_topic" {
  for_each = local.inbound_topic_arns

  statement {
    sid       = "EndUserMessagingPublishes"
    actions   = ["sns:Publish"]
    resources = [each.value]

    principals {
      type        = "Service"
      identifiers = ["${local.inbound_publishers[each.key]}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${data.aws_partition.current.partition}:${local.inbound_publishers[each.key]}:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:*"]
    }
  }
}

resource "aws_sns_topic_policy" "inbound" {
  for_each = local.inbound_topics

  arn    = each.value.arn
  policy = data.aws_iam_policy_document.inbound_topic[each.key].json
}

resource "aws_sns_topic_subscription" "inbound" {
  for_each = local.inbound_topics

  topic_arn = each.value.arn
  protocol  = "lambda"
  endpoint  = aws_lambda_function.this[each.key].arn
}

# SNS invokes the function asynchronously: Lambda retries a failed invocation twice, then
# puts it in the function's dead-letter queue (lambda.tf).
resource "aws_lambda_permission" "inbound" {
  for_each = local.inbound_topics

  statement_id  = "AllowInboundTopic"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this[each.key].function_name
  principal     = "sns.amazonaws.com"
  source_arn    = each.value.arn
}
