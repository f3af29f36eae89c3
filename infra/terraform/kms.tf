data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

# One customer-managed key encrypts the table and every queue. The key policy delegates to IAM
# (the account root), so Lambda roles get kms:Decrypt / kms:GenerateDataKey through their own
# IAM policies instead of through edits to this policy.
resource "aws_kms_key" "citas" {
  description             = "${var.project}-${var.environment}: DynamoDB table and SQS queues"
  enable_key_rotation     = true
  deletion_window_in_days = 30

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid    = "EnableIamPoliciesOfTheAccount"
        Effect = "Allow"
        Principal = {
          AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"
        }
        Action   = "kms:*"
        Resource = "*"
      },
    ]
  })
}

resource "aws_kms_alias" "citas" {
  name          = "alias/${var.project}-${var.environment}"
  target_key_id = aws_kms_key.citas.key_id
}
