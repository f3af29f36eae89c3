"""Terraform itself on infra/terraform: `fmt`, `validate`, and plans against a mocked AWS.

The plans (`terraform test` with `mock_provider`, Terraform 1.7+) evaluate what python-hcl2
cannot: that the graph has no cycle (the functions' settings name the API, whose integrations
name the functions), that null settings are left out, the sending identities' ARNs, and that
the variables' validations and the clinics' preconditions refuse what they should. No AWS
call is made: every data source and resource is the mock's.

They need `terraform` on the PATH (skipped otherwise, as `make test` does not install it) and
the AWS provider: from a local mirror when TF_PLUGIN_DIR names one (or /opt/tf-plugins
exists), else from the registry. Everything runs on a copy, so no .terraform directory or
lock file appears in the repository.
"""

# ruff: noqa: E501  (the HCL of MOCKED_PLANS keeps Terraform's own line lengths)

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scripts.terraform_cli import (
    INIT_FAILED,
    ROOT,
    TF_DIR,
    copy_configuration,
    init,
    run,
    terraform_binary,
)

pytestmark = pytest.mark.skipif(terraform_binary() is None, reason="terraform is not on the PATH")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised copy of infra/terraform, with the api/openapi.yaml it reads."""
    copy = copy_configuration(tmp_path_factory.mktemp("terraform"))
    done = init(copy)
    if done.returncode != 0:
        pytest.fail(f"{INIT_FAILED}:\n{done.stderr[-4000:]}")
    return copy


def test_the_tf_files_are_formatted() -> None:
    done = run("fmt", "-check", "-diff", "-no-color", str(TF_DIR), cwd=ROOT)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]


def test_terraform_validate_accepts_the_configuration(workdir: Path) -> None:
    done = run("validate", "-no-color", cwd=workdir)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]


# The runs of the mocked plans. Values the mock only knows after an apply (ids, ARNs of
# resources) are not asserted; everything built from variables and data sources is.
MOCKED_PLANS = """
mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_region" {
    defaults = { name = "us-east-1" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws", dns_suffix = "amazonaws.com" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{}" }
  }
  mock_data "aws_secretsmanager_random_password" {
    defaults = { random_password = "Ab3Ab3Ab3Ab3Ab3Ab3Ab3Ab3Ab3Ab3Ab3Ab3Ab3Ab3Ab3Ab3" }
  }
}

variables {
  lambda_zip = "LAMBDA_ZIP"
}

# The defaults: no sending identity, so no grant and no setting for one; no cycle.
run "defaults" {
  command = plan

  assert {
    condition     = length(local.sms_origination_arns) == 0 && length(local.whatsapp_phone_number_arns) == 0
    error_message = "No identity is configured, yet some would be granted."
  }
  assert {
    condition = alltrue([
      for key in ["notifications", "reminders", "inbound_sms", "inbound_whatsapp"] :
      !contains(keys(aws_lambda_function.this[key].environment[0].variables), "CITAS_SMS_ORIGINATION")
      && !contains(keys(aws_lambda_function.this[key].environment[0].variables), "CITAS_WHATSAPP_PHONE_NUMBER_ID")
      && aws_lambda_function.this[key].environment[0].variables["CITAS_NOTIFIER"] == "aws"
    ])
    error_message = "A sender's settings are wrong: a null identity kept, or not the aws notifier."
  }
  assert {
    condition     = aws_lambda_function.this["patient_pages"].environment[0].variables["CITAS_LINK_KEYS_PARAMETER"] == "/citas/dev/link-keys"
    error_message = "The pages do not get the key ring's parameter."
  }
  assert {
    condition = (
      aws_lambda_function.this["notifications"].environment[0].variables["CITAS_HOLD_MINUTES"] == "30"
      && !contains(keys(aws_lambda_function.this["offers_sweeper"].environment[0].variables), "CITAS_HOLD_MINUTES")
    )
    error_message = "The events consumer does not get the deployment's hold, or the sweeper gets one."
  }
  assert {
    condition     = aws_cloudwatch_event_rule.offers_sweeper.schedule_expression == "rate(1 minute)" && aws_lambda_function.this["offers_sweeper"].handler == "entrypoints.lambda.offers_sweeper.handler"
    error_message = "The offers sweeper does not run every minute."
  }
  assert {
    condition = alltrue(flatten([
      for path, item in jsondecode(aws_api_gateway_rest_api.citas.body).paths : [
        for method, operation in item : (
          startswith(path, "/p/")
          ? strcontains(operation["x-amazon-apigateway-integration"].uri, ":function:citas-dev-patient-pages/invocations")
          && length(operation.security) == 0
          : strcontains(operation["x-amazon-apigateway-integration"].uri, ":function:citas-dev-http-api/invocations")
        ) if contains(["get", "put", "post", "delete", "patch", "head", "options"], method)
      ]
    ]))
    error_message = "An operation of the API goes to the wrong function, or a page needs the API key."
  }
}

# What a stack pays for every month whatever its traffic (WAF, its own KMS keys, alarms):
# none of it in dev, which encrypts with the keys AWS owns or manages for each service.
run "dev_has_nothing_with_a_monthly_charge" {
  command = plan

  assert {
    condition = (
      length(aws_wafv2_web_acl.api) == 0 && length(aws_wafv2_web_acl_association.api) == 0
      && length(aws_wafv2_web_acl_logging_configuration.api) == 0 && length(aws_cloudwatch_log_group.waf) == 0
    )
    error_message = "A dev stack has a WAF."
  }
  assert {
    condition     = length(aws_kms_key.citas) == 0 && length(aws_kms_key.observability) == 0 && length(aws_kms_alias.citas) == 0
    error_message = "A dev stack has customer-managed keys."
  }
  assert {
    condition     = length(aws_cloudwatch_metric_alarm.this) == 0 && length(aws_sns_topic.alarms) == 0
    error_message = "A dev stack has alarms."
  }
  assert {
    condition = (
      !aws_dynamodb_table.citas.server_side_encryption[0].enabled
      && aws_sqs_queue.events.sqs_managed_sse_enabled && aws_sqs_queue.events.kms_master_key_id == null
      && aws_sqs_queue.reminders_dlq.sqs_managed_sse_enabled
      && aws_lambda_function.this["http_api"].kms_key_arn == null
      && aws_cloudwatch_log_group.function["http_api"].kms_key_id == null
    )
    error_message = "Without keys of its own, some data is not left to the service's own encryption."
  }
}

run "prod_has_the_waf_its_own_keys_and_the_alarms" {
  command = plan

  variables {
    environment = "prod"
  }

  assert {
    condition = (
      length(aws_wafv2_web_acl.api) == 1 && length(aws_wafv2_web_acl_association.api) == 1
      && length(aws_wafv2_web_acl_logging_configuration.api) == 1 && length(aws_cloudwatch_log_group.waf) == 1
    )
    error_message = "A prod stack has no WAF."
  }
  assert {
    condition     = length(aws_kms_key.citas) == 1 && length(aws_kms_key.observability) == 1 && length(aws_kms_alias.observability) == 1
    error_message = "A prod stack has no keys of its own."
  }
  assert {
    condition     = length(aws_cloudwatch_metric_alarm.this) == 34 && length(aws_sns_topic.alarms) == 1
    error_message = "A prod stack lacks alarms."
  }
  assert {
    condition = (
      aws_dynamodb_table.citas.server_side_encryption[0].enabled
      && aws_kms_key.citas[0].enable_key_rotation && aws_kms_key.observability[0].enable_key_rotation
    )
    error_message = "A prod stack does not encrypt with its own keys."
  }
}

run "each_choice_can_be_made_against_the_environment" {
  command = plan

  variables {
    environment               = "prod"
    enable_waf                = false
    use_customer_managed_keys = false
    enable_alarms             = true
  }

  assert {
    condition = (
      length(aws_wafv2_web_acl.api) == 0 && length(aws_kms_key.citas) == 0
      && length(aws_cloudwatch_metric_alarm.this) == 34 && aws_sns_topic.alarms[0].kms_master_key_id == null
    )
    error_message = "The variables do not override the environment's defaults."
  }
}

# Identities of the deployment and of a clinic, in each form.
run "configured" {
  command = plan

  variables {
    sms_origination_identity = "pool-0123abcd"
    whatsapp_phone_number_id = "phone-number-id-abc123"
    clinics = {
      sol = {
        name                     = "Clínica Sol"
        channels                 = ["whatsapp", "sms"]
        sms_number               = "+51987654321"
        whatsapp_phone_number_id = "arn:aws:social-messaging:us-east-1:123456789012:phone-number-id/def456"
        hold_minutes             = 45
      }
      luna = { name = "Clínica Luna" }
    }
    hold_minutes = 20
  }

  # The clinic's own hold is in its directory entry (which names its key's id, known only
  # after an apply: tests/infra/test_terraform.py reads that value); the deployment's here.
  assert {
    condition     = aws_lambda_function.this["notifications"].environment[0].variables["CITAS_HOLD_MINUTES"] == "20"
    error_message = "The deployment's hold is not what the events consumer reads."
  }

  assert {
    condition = local.sms_origination_arns == tolist([
      "arn:aws:sms-voice:us-east-1:123456789012:pool/pool-0123abcd",
      "arn:aws:sms-voice:us-east-1:123456789012:phone-number/*",
    ])
    error_message = "The SMS identities are not the pool's and the account's phone numbers."
  }
  assert {
    condition = local.whatsapp_phone_number_arns == tolist([
      "arn:aws:social-messaging:us-east-1:123456789012:phone-number-id/abc123",
      "arn:aws:social-messaging:us-east-1:123456789012:phone-number-id/def456",
    ])
    error_message = "The WhatsApp identities are not the two numbers' ARNs."
  }
  assert {
    condition = (
      aws_lambda_function.this["inbound_sms"].environment[0].variables["CITAS_SMS_ORIGINATION"] == "pool-0123abcd"
      && aws_lambda_function.this["inbound_sms"].environment[0].variables["CITAS_WHATSAPP_PHONE_NUMBER_ID"] == "phone-number-id-abc123"
    )
    error_message = "The senders do not get the deployment's identities."
  }
}

run "an_sms_origination_given_as_a_phone_number_id_or_an_arn" {
  command = plan

  variables {
    sms_origination_identity = "phone-0123abcd"
  }

  assert {
    condition     = local.sms_origination_arns == tolist(["arn:aws:sms-voice:us-east-1:123456789012:phone-number/phone-0123abcd"])
    error_message = "A phone number id does not become its ARN."
  }
}

run "a_clinic_on_whatsapp_without_a_number" {
  command = plan

  variables {
    clinics = { sol = { name = "Clínica Sol", channels = ["whatsapp"] } }
  }

  expect_failures = [aws_ssm_parameter.clinic]
}

run "a_number_that_is_not_e164" {
  command = plan

  variables {
    clinics = { sol = { name = "Clínica Sol", sms_number = "987654321" } }
  }

  expect_failures = [var.clinics]
}

run "two_clinics_with_one_number" {
  command = plan

  variables {
    clinics = {
      sol  = { name = "Clínica Sol", sms_number = "+51987654321" }
      luna = { name = "Clínica Luna", sms_number = "+51987654321" }
    }
  }

  expect_failures = [var.clinics]
}

run "an_unknown_channel" {
  command = plan

  variables {
    clinics = { sol = { name = "Clínica Sol", channels = ["email"] } }
  }

  expect_failures = [var.clinics]
}

run "a_clinic_hold_of_more_than_a_day" {
  command = plan

  variables {
    clinics = { sol = { name = "Clínica Sol", hold_minutes = 1441 } }
  }

  expect_failures = [var.clinics]
}

run "a_hold_of_part_of_a_minute" {
  command = plan

  variables {
    hold_minutes = 0.5
  }

  expect_failures = [var.hold_minutes]
}

run "an_sms_origination_iam_cannot_name" {
  command = plan

  variables {
    sms_origination_identity = "+51987654321"
  }

  expect_failures = [var.sms_origination_identity]
}
"""


def test_mocked_plans_have_no_cycle_and_check_what_they_should(
    workdir: Path, tmp_path: Path
) -> None:
    version = run("version", cwd=workdir).stdout
    found = re.search(r"Terraform v(\d+)\.(\d+)", version)
    assert found is not None, version
    if (int(found[1]), int(found[2])) < (1, 7):
        pytest.skip(f"mock_provider needs Terraform 1.7 or later: {version.splitlines()[0]}")
    artifact = tmp_path / "lambda.zip"
    artifact.write_bytes(b"not a real artifact: nothing is deployed")
    tests = workdir / "tests"
    tests.mkdir(exist_ok=True)
    (tests / "mocked.tftest.hcl").write_text(
        MOCKED_PLANS.replace("LAMBDA_ZIP", str(artifact)), encoding="utf-8"
    )
    done = run("test", "-no-color", cwd=workdir)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-4000:]
    assert " 0 failed" in done.stdout, done.stdout[-4000:]
