locals {
  table_name = "${var.project}-${var.environment}"
}

# The single table. adapters/aws/resources.py parses this block to create the same table on
# DynamoDB Local, so keys, indexes, TTL and stream settings are defined only here.
resource "aws_dynamodb_table" "citas" {
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

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.citas.arn
  }
}
