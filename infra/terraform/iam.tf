# One role per function, allowed only the calls that function's code makes, on only its own
# resources. tests/infra checks each list against the AWS calls the adapters really make.
#
# Each function's policy is its kind's document below (booking workers: one per country),
# which starts from the statements every function needs (data.aws_iam_policy_document.
# function_basics), adds those of what it does with patients' links and messages
# (link_keys, send_messages) and then only that function's own.

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    sid     = "LambdaRunsTheFunction"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

locals {
  table_resources = [aws_dynamodb_table.citas.arn, "${aws_dynamodb_table.citas.arn}/index/*"]

  # The policy document of each function of local.functions.
  function_policies = merge(
    {
      http_api         = data.aws_iam_policy_document.http_api.json
      outbox_relay     = data.aws_iam_policy_document.outbox_relay.json
      notifications    = data.aws_iam_policy_document.notifications.json
      reminders        = data.aws_iam_policy_document.reminders.json
      offers_sweeper   = data.aws_iam_policy_document.offers_sweeper.json
      patient_pages    = data.aws_iam_policy_document.patient_pages.json
      inbound_sms      = data.aws_iam_policy_document.inbound_sms.json
      inbound_whatsapp = data.aws_iam_policy_document.inbound_whatsapp.json
    },
    { for key, document in data.aws_iam_policy_document.booking_worker : key => document.json },
  )
}

resource "aws_iam_role" "function" {
  for_each = local.function_names

  name               = "${each.value}-role"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions

  # The kind, with dashes: booking-worker for every country's worker.
  name   = replace(each.value.kind, "_", "-")
  role   = aws_iam_role.function[each.key].id
  policy = local.function_policies[each.key]
}

# What every function needs: its own log group, X-Ray, the data key (environment, table,
# queues) and the clinic directory.
data "aws_iam_policy_document" "function_basics" {
  for_each = local.function_names

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function[each.key].arn}:*"]
  }

  statement {
    sid       = "SendTraces"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  # Only with a key of ours: the keys AWS owns or manages for each service need no grant.
  dynamic "statement" {
    for_each = aws_kms_key.citas[*].arn

    content {
      sid       = "UseDataKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }

  # Every function resolves clinics (adapters/aws/clinics.py reads the whole directory with
  # GetParametersByPath). The path's own ARN is the resource that call is authorised against
  # (local.clinics_parameter_arn), so no other parameter, the page-token key included, is
  # readable through this statement.
  statement {
    sid       = "ReadClinicDirectory"
    actions   = ["ssm:GetParametersByPath"]
    resources = [local.clinics_parameter_arn]
  }
}

# --- link_keys: the functions that sign or check patients' links ----------------------------

# The key ring's own parameter and nothing else; its SecureString is decrypted with the data
# key, which function_basics already allows (UseDataKey).
data "aws_iam_policy_document" "link_keys" {
  statement {
    sid       = "ReadLinkKeys"
    actions   = ["ssm:GetParameter"]
    resources = [aws_ssm_parameter.link_keys.arn]
  }
}

# --- send_messages: the functions that write to patients -------------------------------------

# From the configured sending identities only (messaging.tf); none configured, no statement.
data "aws_iam_policy_document" "send_messages" {
  dynamic "statement" {
    for_each = length(local.sms_origination_arns) > 0 ? ["sms"] : []

    content {
      sid       = "SendSms"
      actions   = ["sms-voice:SendTextMessage"]
      resources = local.sms_origination_arns
    }
  }

  dynamic "statement" {
    for_each = length(local.whatsapp_phone_number_arns) > 0 ? ["whatsapp"] : []

    content {
      sid       = "SendWhatsApp"
      actions   = ["social-messaging:SendWhatsAppMessage"]
      resources = local.whatsapp_phone_number_arns
    }
  }
}

# --- http_api: the API's use cases (doctors, bookings, lists, changes, booking requests) ----

data "aws_iam_policy_document" "http_api" {
  source_policy_documents = [data.aws_iam_policy_document.function_basics["http_api"].json]

  # UpdateItem: the day guards, the appointment and the doctor's profile; ConditionCheckItem:
  # the schedule version a booking checks; BatchGetItem: the day guards time off reads. The
  # transactional ones inside one TransactWriteItems.
  statement {
    sid = "ReadWriteTable"
    actions = [
      "dynamodb:BatchGetItem",
      "dynamodb:ConditionCheckItem",
      "dynamodb:DeleteItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
    ]
    resources = local.table_resources
  }

  statement {
    sid       = "QueueBookingRequests"
    actions   = ["sqs:SendMessage"]
    resources = [for q in aws_sqs_queue.booking_requests : q.arn]
  }
}

# --- outbox_relay: table stream in, events queue out, outbox item deleted -----------------

data "aws_iam_policy_document" "outbox_relay" {
  source_policy_documents = [data.aws_iam_policy_document.function_basics["outbox_relay"].json]

  # The event source mapping reads the stream with the function's role.
  statement {
    sid = "ReadTableStream"
    actions = [
      "dynamodb:DescribeStream",
      "dynamodb:GetRecords",
      "dynamodb:GetShardIterator",
      "dynamodb:ListStreams",
    ]
    resources = [aws_dynamodb_table.citas.stream_arn]
  }

  statement {
    sid       = "DeletePublishedOutboxItems"
    actions   = ["dynamodb:BatchWriteItem"]
    resources = local.table_resources
  }

  statement {
    sid       = "PublishEvents"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.events.arn]
  }

  # The event source mapping's on-failure destination, also written with the function's role.
  statement {
    sid       = "RecordFailedBatches"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.outbox_relay_failures.arn]
  }
}

# --- booking_worker: one role per country, its own queue only --------------------------------

data "aws_iam_policy_document" "booking_worker" {
  for_each = local.booking_workers

  source_policy_documents = [data.aws_iam_policy_document.function_basics[each.key].json]

  # The event source mapping polls the queue with the function's role.
  statement {
    sid       = "ConsumeOwnQueue"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.booking_requests[each.value.country].arn]
  }

  # A booking puts the appointment, updates its day guards and checks the doctor's schedule
  # version in one TransactWriteItems.
  statement {
    sid = "ReadWriteTable"
    actions = [
      "dynamodb:ConditionCheckItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
    ]
    resources = local.table_resources
  }
}

# --- notifications: events queue in, waitlist offers and SMS and WhatsApp out, markers ------

data "aws_iam_policy_document" "notifications" {
  source_policy_documents = [
    data.aws_iam_policy_document.function_basics["notifications"].json,
    data.aws_iam_policy_document.link_keys.json,
    data.aws_iam_policy_document.send_messages.json,
  ]

  statement {
    sid       = "ConsumeEventsQueue"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.events.arn]
  }

  # GetItem: the markers, appointment, doctor, schedule and contact; PutItem: markers, held
  # messages, sent messages; UpdateItem: the awaited answer on the contact. The refill:
  # Query the doctor's waiting entries (gsi1), then hold the slot for one, its cells, entry
  # and event in one TransactWriteItems that checks the schedule version (ConditionCheckItem).
  statement {
    sid = "ReadWriteTable"
    actions = [
      "dynamodb:ConditionCheckItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
    ]
    resources = local.table_resources
  }
}

# --- reminders: the confirmation cadence on gsi2, held messages on gsi1, messages out ------

data "aws_iam_policy_document" "reminders" {
  source_policy_documents = [
    data.aws_iam_policy_document.function_basics["reminders"].json,
    data.aws_iam_policy_document.link_keys.json,
    data.aws_iam_policy_document.send_messages.json,
  ]

  # Query: country-status lists and due held messages; DeleteItem: a held message sent.
  statement {
    sid = "ReadWriteTable"
    actions = [
      "dynamodb:DeleteItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
    ]
    resources = local.table_resources
  }

  # Lambda writes failed runs to the function's dead-letter queue with the function's role.
  statement {
    sid       = "DeadLetterFailedRuns"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.reminders_dlq.arn]
  }
}

# --- offers_sweeper: the clinic's offers on gsi2, each expired one released -----------------

data "aws_iam_policy_document" "offers_sweeper" {
  source_policy_documents = [data.aws_iam_policy_document.function_basics["offers_sweeper"].json]

  # Query: the clinic's offered entries (gsi2); GetItem: an entry read again before its
  # release; the release frees the held cells and stores the entry and its event in one
  # TransactWriteItems (UpdateItem, PutItem, ConditionCheckItem).
  statement {
    sid = "ReadWriteTable"
    actions = [
      "dynamodb:ConditionCheckItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
    ]
    resources = local.table_resources
  }

  # Lambda writes failed runs to the function's dead-letter queue with the function's role.
  statement {
    sid       = "DeadLetterFailedRuns"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.offers_sweeper_dlq.arn]
  }
}

# --- patient_pages: one appointment and its doctor's free slots, changed by the patient -----

data "aws_iam_policy_document" "patient_pages" {
  source_policy_documents = [
    data.aws_iam_policy_document.function_basics["patient_pages"].json,
    data.aws_iam_policy_document.link_keys.json,
  ]

  # Query: the doctor's day (free slots); the confirm, cancel or reschedule writes the
  # appointment, its day guards and its event in one TransactWriteItems, and so does taking
  # or letting go a waitlist offer (the entry, its held cells, the appointment it books).
  statement {
    sid = "ReadWriteTable"
    actions = [
      "dynamodb:ConditionCheckItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
    ]
    resources = local.table_resources
  }
}

# --- inbound_sms, inbound_whatsapp: a patient's reply applied, answered on its channel -------

data "aws_iam_policy_document" "inbound_sms" {
  source_policy_documents = [
    data.aws_iam_policy_document.function_basics["inbound_sms"].json,
    data.aws_iam_policy_document.link_keys.json,
    data.aws_iam_policy_document.send_messages.json,
  ]

  # The reply's marker, the contact (answered, opted out, with its event in a transaction)
  # and the appointment it confirms or cancels, or the waitlist offer it takes or lets go.
  statement {
    sid = "ReadWriteTable"
    actions = [
      "dynamodb:ConditionCheckItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
    ]
    resources = local.table_resources
  }

  # Lambda writes failed invocations to the function's dead-letter queue with its role.
  statement {
    sid       = "DeadLetterFailedReplies"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.inbound_sms_dlq.arn]
  }
}

data "aws_iam_policy_document" "inbound_whatsapp" {
  source_policy_documents = [
    data.aws_iam_policy_document.function_basics["inbound_whatsapp"].json,
    data.aws_iam_policy_document.link_keys.json,
    data.aws_iam_policy_document.send_messages.json,
  ]

  # As inbound_sms, and the sent message a failed WhatsApp delivery falls back to SMS with.
  statement {
    sid = "ReadWriteTable"
    actions = [
      "dynamodb:ConditionCheckItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
    ]
    resources = local.table_resources
  }

  statement {
    sid       = "DeadLetterFailedReplies"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.inbound_whatsapp_dlq.arn]
  }
}

# --- API Gateway: the regional account setting that lets it write logs -----------------------

data "aws_iam_policy_document" "apigateway_assume" {
  statement {
    sid     = "ApiGatewayWritesLogs"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["apigateway.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "apigateway_cloudwatch" {
  count = var.manage_api_gateway_account ? 1 : 0

  name               = "${local.name_prefix}-apigateway-cloudwatch"
  assume_role_policy = data.aws_iam_policy_document.apigateway_assume.json
}

resource "aws_iam_role_policy_attachment" "apigateway_cloudwatch" {
  count = var.manage_api_gateway_account ? 1 : 0

  role       = aws_iam_role.apigateway_cloudwatch[0].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
}

resource "aws_api_gateway_account" "citas" {
  count = var.manage_api_gateway_account ? 1 : 0

  cloudwatch_role_arn = aws_iam_role.apigateway_cloudwatch[0].arn
  # On destroy, unset the region's logging role instead of leaving it naming a deleted role.
  # (Deprecated in provider 5.x because 6.x always does this; this stack pins ~> 5.0.)
  reset_on_delete = true

  depends_on = [aws_iam_role_policy_attachment.apigateway_cloudwatch]
}
