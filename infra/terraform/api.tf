locals {
  # The API is the project's OpenAPI document, the same one the local server, the tests and
  # the Postman collection use, with API Gateway's extensions merged in: every operation goes
  # to the http_api Lambda (proxy), requests are validated against the document's schemas and
  # parameters before they cost a Lambda call, and the `x-api-key` scheme becomes API keys.
  # The patient pages (paths under /p/, CONTRACT.md "Patients answer") are the exception:
  # they go to the patient_pages Lambda, need no API key (`security: []`, whatever the
  # document says) and have only their parameters checked (their bodies are HTML forms, which
  # API Gateway's JSON-schema models cannot validate).
  openapi = yamldecode(file("${path.module}/../../api/openapi.yaml"))

  openapi_methods = ["get", "put", "post", "delete", "patch", "head", "options"]

  page_path_prefix = "/p/"

  # The functions API Gateway invokes, by the ARN their names give (the same as their
  # invoke_arn): the API must not depend on aws_lambda_function.this, whose settings name
  # the API (CITAS_PUBLIC_BASE_URL); the stage's deployment waits for the functions instead.
  api_function_arns = {
    for key in ["http_api", "patient_pages"] : key => "arn:${data.aws_partition.current.partition}:lambda:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:function:${local.name_prefix}-${replace(key, "_", "-")}"
  }

  api_integrations = {
    for key, function_arn in local.api_function_arns : key => {
      type                = "aws_proxy"
      httpMethod          = "POST"
      uri                 = "arn:${data.aws_partition.current.partition}:apigateway:${data.aws_region.current.name}:lambda:path/2015-03-31/functions/${function_arn}/invocations"
      passthroughBehavior = "when_no_match"
      timeoutInMillis     = 29000
    }
  }

  # What a page operation gets on top of its integration.
  page_operation = {
    security                                = []
    "x-amazon-apigateway-request-validator" = "params-only"
  }

  api_paths = {
    for path, item in local.openapi.paths : path => merge(item, {
      for method, operation in item : method => merge(
        operation,
        { "x-amazon-apigateway-integration" = local.api_integrations[startswith(path, local.page_path_prefix) ? "patient_pages" : "http_api"] },
        { for key, value in local.page_operation : key => value if startswith(path, local.page_path_prefix) },
      ) if contains(local.openapi_methods, method)
    })
  }

  # The stage's invoke URL (aws_api_gateway_stage.citas.invoke_url), from the API's id: the
  # functions' CITAS_PUBLIC_BASE_URL, the base of patients' links. The stage and its
  # deployment come after the functions, so they cannot be referenced here.
  public_base_url = "https://${aws_api_gateway_rest_api.citas.id}.execute-api.${data.aws_region.current.name}.${data.aws_partition.current.dns_suffix}/${var.api_stage_name}"

  # Answers the gateway gives itself keep the API's error shape (see CONTRACT.md).
  api_error_template = "{\"error\": {\"code\": \"%s\", \"message\": \"%s\", \"details\": {}}}"

  api_body = merge(
    # `servers` names the local server; API Gateway would read a base path from it.
    { for key, value in local.openapi : key => value if key != "servers" },
    {
      paths = local.api_paths
      components = merge(local.openapi.components, {
        securitySchemes = merge(local.openapi.components.securitySchemes, {
          api_key = {
            type        = "apiKey"
            in          = "header"
            name        = "x-api-key"
            description = local.openapi.components.securitySchemes.api_key.description
          }
        })
      })
      "x-amazon-apigateway-api-key-source" = "HEADER"
      "x-amazon-apigateway-request-validators" = {
        body-and-params = {
          validateRequestBody       = true
          validateRequestParameters = true
        }
        params-only = {
          validateRequestBody       = false
          validateRequestParameters = true
        }
      }
      "x-amazon-apigateway-request-validator" = "body-and-params"
      "x-amazon-apigateway-gateway-responses" = {
        BAD_REQUEST_BODY = {
          statusCode = "400"
          responseTemplates = {
            "application/json" = format(local.api_error_template, "validation_error", "the request body does not match the API schema")
          }
        }
        BAD_REQUEST_PARAMETERS = {
          statusCode = "400"
          responseTemplates = {
            "application/json" = format(local.api_error_template, "validation_error", "a required request parameter is missing")
          }
        }
        REQUEST_TOO_LARGE = {
          statusCode = "413"
          responseTemplates = {
            "application/json" = format(local.api_error_template, "payload_too_large", "the request body is too large")
          }
        }
      }
    },
  )
}

resource "aws_api_gateway_rest_api" "citas" {
  name        = "${local.name_prefix}-api"
  description = "citas appointment API, from api/openapi.yaml"
  body        = jsonencode(local.api_body)

  endpoint_configuration {
    types = ["REGIONAL"]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_api_gateway_deployment" "citas" {
  rest_api_id = aws_api_gateway_rest_api.citas.id

  # A new deployment whenever the document (and so any route, schema or integration) changes.
  triggers = {
    redeployment = sha1(aws_api_gateway_rest_api.citas.body)
  }

  lifecycle {
    create_before_destroy = true
  }

  # The integrations name the functions by ARN (local.api_function_arns): no stage serves
  # them before they exist.
  depends_on = [aws_lambda_function.this]
}

resource "aws_cloudwatch_log_group" "api_access" {
  name              = "/aws/apigateway/${local.name_prefix}-api/access"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.observability_key_arn
}

# API Gateway would create this group itself, unencrypted and kept forever.
resource "aws_cloudwatch_log_group" "api_execution" {
  name              = "API-Gateway-Execution-Logs_${aws_api_gateway_rest_api.citas.id}/${var.api_stage_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.observability_key_arn
}

resource "aws_api_gateway_stage" "citas" {
  #checkov:skip=CKV_AWS_120:Responses change with every booking (availability, lists); a cache would serve free slots that are already taken.
  #checkov:skip=CKV2_AWS_77:Log4j exploits are blocked by AWSManagedRulesKnownBadInputsRuleSet (waf.tf); the check also demands AWSManagedRulesAnonymousIpList, whose hosting-provider list would block the WhatsApp bots and clinic integrations that run on cloud servers.
  #checkov:skip=CKV2_AWS_51:Clients authenticate with API keys (usage plan) behind WAF; mutual TLS needs a custom domain and client certificates the clinics' apps do not have.
  rest_api_id          = aws_api_gateway_rest_api.citas.id
  deployment_id        = aws_api_gateway_deployment.citas.id
  stage_name           = var.api_stage_name
  xray_tracing_enabled = true

  # One JSON line per request; ids and status only, no body, no header values.
  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api_access.arn
    format = jsonencode({
      requestId          = "$context.requestId"
      extendedRequestId  = "$context.extendedRequestId"
      requestTime        = "$context.requestTime"
      httpMethod         = "$context.httpMethod"
      resourcePath       = "$context.resourcePath"
      status             = "$context.status"
      responseLength     = "$context.responseLength"
      responseLatency    = "$context.responseLatency"
      integrationLatency = "$context.integrationLatency"
      integrationStatus  = "$context.integrationStatus"
      errorType          = "$context.error.responseType"
      apiKeyId           = "$context.identity.apiKeyId"
      sourceIp           = "$context.identity.sourceIp"
      wafStatus          = "$context.waf.status"
      xrayTraceId        = "$context.xrayTraceId"
    })
  }

  depends_on = [aws_api_gateway_account.citas, aws_cloudwatch_log_group.api_execution]
}

resource "aws_api_gateway_method_settings" "all" {
  #checkov:skip=CKV_AWS_225:Caching is off on purpose: responses change with every booking, so a cache would serve stale availability.
  rest_api_id = aws_api_gateway_rest_api.citas.id
  stage_name  = aws_api_gateway_stage.citas.stage_name
  method_path = "*/*"

  settings {
    metrics_enabled = true
    # Errors only, and never the request or response data (data_trace_enabled would log bodies
    # with patients' names and phones).
    logging_level        = "ERROR"
    data_trace_enabled   = false
    caching_enabled      = false
    cache_data_encrypted = true
    # No stage-wide throttle: the usage plan limits each API key, and a stage limit equal to
    # it would cap all clinics together at one key's rate.
  }
}

resource "aws_lambda_permission" "api_gateway" {
  statement_id  = "AllowApiGatewayStage"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["http_api"].function_name
  principal     = "apigateway.amazonaws.com"
  # Only this API's deployed stage, any method and path of it.
  source_arn = "${aws_api_gateway_rest_api.citas.execution_arn}/${var.api_stage_name}/*/*"
}

resource "aws_lambda_permission" "patient_pages" {
  statement_id  = "AllowApiGatewayPatientPages"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["patient_pages"].function_name
  principal     = "apigateway.amazonaws.com"
  # Only this API's deployed stage, any method, the paths under /p/.
  source_arn = "${aws_api_gateway_rest_api.citas.execution_arn}/${var.api_stage_name}/*${local.page_path_prefix}*"
}

# --- clinics: one API key each, its usage plan and its directory entry ------------------------

locals {
  # Where the clinic directory lives in Parameter Store (CITAS_CLINICS_PARAMETER_PATH): one
  # parameter per clinic right under it, read by every function (adapters/aws/clinics.py).
  clinics_parameter_path = "/${local.name_prefix}/clinics"
  # GetParametersByPath is authorised against the path it is called with, never against the
  # parameters it returns: this ARN, with no `/*`, is all a reader needs, and it reaches no
  # other parameter of the account.
  clinics_parameter_arn = "arn:${data.aws_partition.current.partition}:ssm:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:parameter${local.clinics_parameter_path}"
}

# A request's clinic is the clinic of the API key API Gateway validated for it
# (requestContext.identity.apiKeyId), so every clinic has a key of its own.
resource "aws_api_gateway_api_key" "clinic" {
  for_each = var.clinics

  name        = "${local.name_prefix}-${each.key}"
  description = "The API key of the ${each.key} clinic of ${local.name_prefix}: every request sent with it acts for that clinic."
  enabled     = true
}

# One usage plan per clinic. A plan's throttle and quota apply to each of its keys separately,
# so a clinic with limits of its own cannot share a plan with one without; and one plan per
# clinic, rather than one per distinct set of limits, keeps a clinic's key in the same plan
# when its limits change (an in-place update of its plan, never a key moved between plans).
# The cost is one plan per clinic against the account's usage plans per region (300 by
# default, adjustable).
resource "aws_api_gateway_usage_plan" "clinic" {
  for_each = var.clinics

  name        = "${local.name_prefix}-${each.key}"
  description = "Rate, burst and quota of the ${each.key} clinic's API key."

  api_stages {
    api_id = aws_api_gateway_rest_api.citas.id
    stage  = aws_api_gateway_stage.citas.stage_name
  }

  throttle_settings {
    rate_limit  = coalesce(each.value.throttle_rate_limit, var.api_throttle_rate_limit)
    burst_limit = coalesce(each.value.throttle_burst_limit, var.api_throttle_burst_limit)
  }

  quota_settings {
    limit  = coalesce(each.value.quota_per_day, var.api_monthly_quota)
    period = each.value.quota_per_day == null ? "MONTH" : "DAY"
  }
}

resource "aws_api_gateway_usage_plan_key" "clinic" {
  for_each = var.clinics

  key_id        = aws_api_gateway_api_key.clinic[each.key].id
  key_type      = "API_KEY"
  usage_plan_id = aws_api_gateway_usage_plan.clinic[each.key].id
}

# The clinic directory: which API key id is which clinic, with the clinic's name and links.
# `insecure_value` (a String parameter) so that a plan shows what a change of clinics writes.
resource "aws_ssm_parameter" "clinic" {
  #checkov:skip=CKV2_AWS_34:No secret: ids and display names. The value is the clinic's id, name, public URL, channels, sending numbers (which patients see), waitlist hold and its API key's id, which API Gateway logs with every request; the key itself is not in it. A SecureString would add a KMS Decrypt per clinic to every read of the directory.
  for_each = var.clinics

  name        = "${local.clinics_parameter_path}/${each.key}"
  description = "citas clinic ${each.key}: its name, channels, numbers and the id of its API key (no secret)"
  type        = "String"
  insecure_value = jsonencode({
    clinic_id                = each.key
    name                     = each.value.name
    api_key_id               = aws_api_gateway_api_key.clinic[each.key].id
    public_base_url          = each.value.public_base_url
    channels                 = each.value.channels
    sms_number               = each.value.sms_number
    whatsapp_phone_number_id = each.value.whatsapp_phone_number_id
    hold_minutes             = each.value.hold_minutes
  })

  lifecycle {
    # Unlike SMS, WhatsApp has no account default: every message names its sending number.
    precondition {
      condition     = !contains(each.value.channels, "whatsapp") || each.value.whatsapp_phone_number_id != null || var.whatsapp_phone_number_id != null
      error_message = "Clinic ${each.key} writes on WhatsApp but neither it (whatsapp_phone_number_id) nor the deployment (var.whatsapp_phone_number_id) names a WhatsApp number."
    }
  }
}
