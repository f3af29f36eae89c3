data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  # Whether the stack encrypts with keys of its own (var.use_customer_managed_keys, prod by
  # default). Without them every service uses the key AWS owns or manages for it, which has
  # no monthly charge: DynamoDB's and SQS's own encryption, aws/lambda for the functions'
  # settings, aws/ssm for the parameters, CloudWatch Logs' encryption. The SNS topics are
  # then not encrypted at rest: the services that publish to them (End User Messaging,
  # CloudWatch alarms) cannot use the aws/sns key, whose policy nobody can change.
  customer_managed_keys = coalesce(var.use_customer_managed_keys, var.environment == "prod")
  data_key_arn          = one(aws_kms_key.citas[*].arn)
  observability_key_arn = one(aws_kms_key.observability[*].arn)
  # A queue without a key of ours is encrypted with SQS's own keys (SSE-SQS); the two settings
  # exclude each other.
  sqs_managed_sse = local.customer_managed_keys ? null : true

  # The first statement of both keys' policies: the key policy delegates to IAM (the account
  # root), so roles get their KMS actions through their own IAM policies.
  kms_iam_delegation_statement = {
    Sid    = "EnableIamPoliciesOfTheAccount"
    Effect = "Allow"
    Principal = {
      AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"
    }
    Action   = "kms:*"
    Resource = "*"
  }
}

# One customer-managed key encrypts the table, every queue, the link keys and the inbound
# topics. Its policy delegates to IAM, so Lambda roles get kms:Decrypt / kms:GenerateDataKey
# through their own IAM policies instead of through edits to this policy. The one exception
# is the End User Messaging services, which publish patients' replies to the encrypted
# inbound topics (messaging.tf) as service principals, which no IAM policy can grant: each
# may use the key for its own topic only (SNS's encryption context names the topic), acting
# for this account (End User Messaging SMS User Guide, "Topic policies for Amazon SNS
# topics"; End User Messaging Social User Guide, "Add a message and event destination").
resource "aws_kms_key" "citas" {
  count = local.customer_managed_keys ? 1 : 0

  description             = "${var.project}-${var.environment}: DynamoDB table, SQS queues, link keys and inbound topics"
  enable_key_rotation     = true
  deletion_window_in_days = 30

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([local.kms_iam_delegation_statement], [
      for key, publisher in local.inbound_publishers : {
        Sid    = { inbound_sms = "SmsPublishesToInboundSmsTopic", inbound_whatsapp = "WhatsAppPublishesToInboundWhatsAppTopic" }[key]
        Effect = "Allow"
        Principal = {
          Service = "${publisher}.amazonaws.com"
        }
        Action   = ["kms:GenerateDataKey*", "kms:Decrypt"]
        Resource = "*"
        Condition = {
          StringEquals = {
            "aws:SourceAccount"                      = data.aws_caller_identity.current.account_id
            "kms:EncryptionContext:aws:sns:topicArn" = local.inbound_topic_arns[key]
          }
          ArnLike = {
            "aws:SourceArn" = "arn:${data.aws_partition.current.partition}:${publisher}:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:*"
          }
        }
      }
    ])
  })
}

resource "aws_kms_alias" "citas" {
  count = local.customer_managed_keys ? 1 : 0

  name          = "alias/${var.project}-${var.environment}"
  target_key_id = aws_kms_key.citas[0].key_id
}

# A second key for observability data: log groups (functions, API Gateway, WAF) and the alarm
# topic. CloudWatch Logs and CloudWatch alarms use it as services, so its policy names them;
# the data key above stays usable only through IAM.
resource "aws_kms_key" "observability" {
  count = local.customer_managed_keys ? 1 : 0

  description             = "${var.project}-${var.environment}: CloudWatch log groups and the alarm topic"
  enable_key_rotation     = true
  deletion_window_in_days = 30

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      local.kms_iam_delegation_statement,
      {
        Sid    = "CloudWatchLogsOfThisAccount"
        Effect = "Allow"
        Principal = {
          Service = "logs.${data.aws_region.current.name}.amazonaws.com"
        }
        Action = [
          "kms:Encrypt*",
          "kms:Decrypt*",
          "kms:ReEncrypt*",
          "kms:GenerateDataKey*",
          "kms:Describe*",
        ]
        Resource = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:log-group:*"
          }
        }
      },
      {
        Sid    = "CloudWatchAlarmsPublishToTheEncryptedTopic"
        Effect = "Allow"
        Principal = {
          Service = "cloudwatch.amazonaws.com"
        }
        Action = [
          "kms:Decrypt",
          "kms:GenerateDataKey*",
        ]
        Resource = "*"
        Condition = {
          StringEquals = {
            "aws:SourceAccount" = data.aws_caller_identity.current.account_id
          }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "observability" {
  count = local.customer_managed_keys ? 1 : 0

  name          = "alias/${var.project}-${var.environment}-observability"
  target_key_id = aws_kms_key.observability[0].key_id
}
