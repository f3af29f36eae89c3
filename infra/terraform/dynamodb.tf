locals {
  table_name = "${var.project}-${var.environment}"
}

# The single table. adapters/aws/resources.py parses this block to create the same table on
# DynamoDB Local, so keys, indexes, TTL and stream settings are defined only here.
resource "aws_dynamodb_table" "citas" {
  #checkov:skip=CKV_AWS_119:The stack's own key encrypts the table when var.use_customer_managed_keys is on (prod by default); otherwise DynamoDB's own key, at no charge. Checkov cannot evaluate the local on the source; tests/infra/checkov_plans.py scans the plans (a new dev stack, the stack applied to moto with every part on), where the applied one passes this check.
  name                        = local.table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.deletion_protection

  # The outbox relay Lambda reads new outbox items from the stream.
  stream_enabled   = true
  stream_view_type = "NEW_IMAGE"

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  attribute {
    name = "gsi1pk"
    type = "S"
  }

  attribute {
    name = "gsi1sk"
    type = "S"
  }

  attribute {
    name = "gsi2pk"
    type = "S"
  }

  attribute {
    name = "gsi2sk"
    type = "S"
  }

  # Doctor lists (a local day is a start range): gsi1pk = DOCTOR#<id>, gsi1sk = <start UTC>#<id>.
  # The outbox shares it: gsi1pk = OUTBOX, gsi1sk = <occurred_at>#<event id>.
  global_secondary_index {
    name            = "gsi1"
    hash_key        = "gsi1pk"
    range_key       = "gsi1sk"
    projection_type = "ALL"
  }

  # Country-status lists: gsi2pk = country and status, gsi2sk = start instant.
  global_secondary_index {
    name            = "gsi2"
    hash_key        = "gsi2pk"
    range_key       = "gsi2sk"
    projection_type = "ALL"
  }

  # Slot cells and idempotency keys expire on their own.
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  # Without a key of ours (dev by default), DynamoDB's own key: no charge, no KMS request.
  server_side_encryption {
    enabled     = local.customer_managed_keys
    kms_key_arn = local.data_key_arn
  }
}
