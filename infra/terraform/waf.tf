# AWS WAF in front of the API stage: AWS's managed rules for common exploits, known bad inputs
# and SQL injection, and a per-IP rate limit. Blocked requests never reach the Lambda.
# Only with var.enable_waf (prod by default): a web ACL costs US$5 a month and each rule US$1,
# traffic or not; without it the API keys, the usage plans' throttles and quotas and the
# handlers' own limits remain.
locals {
  enable_waf = coalesce(var.enable_waf, var.environment == "prod")
}

resource "aws_wafv2_web_acl" "api" {
  count = local.enable_waf ? 1 : 0

  name        = "${local.name_prefix}-api"
  description = "citas API: managed rule groups and a per-IP rate limit"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  rule {
    name     = "aws-common-rule-set"
    priority = 10

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesCommonRuleSet"
        vendor_name = "AWS"

        # The group blocks bodies over 8 KB; the API accepts up to 16 KiB and answers larger
        # ones itself with 413 payload_too_large (CONTRACT.md), so this rule only counts.
        rule_action_override {
          name = "SizeRestrictions_BODY"

          action_to_use {
            count {}
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name_prefix}-aws-common"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "aws-known-bad-inputs"
    priority = 20

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
        vendor_name = "AWS"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name_prefix}-aws-known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "aws-sqli-rule-set"
    priority = 30

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesSQLiRuleSet"
        vendor_name = "AWS"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name_prefix}-aws-sqli"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "rate-limit-per-ip"
    priority = 40

    action {
      block {}
    }

    statement {
      rate_based_statement {
        limit              = var.waf_rate_limit
        aggregate_key_type = "IP"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name_prefix}-rate-limit"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${local.name_prefix}-api"
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "api" {
  count = local.enable_waf ? 1 : 0

  resource_arn = aws_api_gateway_stage.citas.arn
  web_acl_arn  = aws_wafv2_web_acl.api[0].arn
}

# WAF logs (the name must start with aws-waf-logs-). The API key header is redacted; WAF never
# logs bodies, so patients' data stays out.
resource "aws_cloudwatch_log_group" "waf" {
  count = local.enable_waf ? 1 : 0

  name              = "aws-waf-logs-${local.name_prefix}-api"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.observability_key_arn
}

data "aws_iam_policy_document" "waf_logs" {
  count = local.enable_waf ? 1 : 0

  statement {
    sid       = "WafDeliversLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.waf[0].arn}:*"]

    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:*"]
    }
  }
}

resource "aws_cloudwatch_log_resource_policy" "waf" {
  count = local.enable_waf ? 1 : 0

  policy_name     = "${local.name_prefix}-waf-logs"
  policy_document = data.aws_iam_policy_document.waf_logs[0].json
}

resource "aws_wafv2_web_acl_logging_configuration" "api" {
  count = local.enable_waf ? 1 : 0

  resource_arn            = aws_wafv2_web_acl.api[0].arn
  log_destination_configs = [aws_cloudwatch_log_group.waf[0].arn]

  redacted_fields {
    single_header {
      name = "x-api-key"
    }
  }

  # A patient page's path is its link (`/p/<token>`, the patient's capability): no log may
  # keep a whole one (CONTRACT.md "Logs"), so the WAF logs no path at all.
  redacted_fields {
    uri_path {}
  }

  depends_on = [aws_cloudwatch_log_resource_policy.waf]
}
