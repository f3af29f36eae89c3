"""What turns a copy of infra/terraform into a stack on moto: the generated override file.

`emulator_override.tf` (a Terraform override file: its blocks are merged into the
configuration's own, https://developer.hashicorp.com/terraform/language/files/override) points
every AWS service the configuration uses at one moto server, with dummy credentials, and holds
the workarounds for what moto does not do as AWS does. The configuration itself is never
changed. `emulator.auto.tfvars.json` sets the variables, so that the whole stack is applied.

Each workaround is one entry of WORKAROUNDS, naming the moto gap it works around (moto 5.2.5,
the newest release; the code of each gap is unchanged on moto's main branch as last checked);
tests/infra/test_terraform_apply.py reports each as a skipped test. Remove an entry and run
that test to see whether a newer moto still needs it.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

OVERRIDE_FILE = "emulator_override.tf"
VARIABLES_FILE = "emulator.auto.tfvars.json"
REGION = "us-east-1"
# moto's default account; any key pair is accepted.
ACCOUNT_ID = "123456789012"
ACCESS_KEY = "test"
SECRET_KEY = "test"

# The provider's `endpoints` argument of each resource or data source type, by longest prefix.
ENDPOINT_OF_TYPE = {
    "aws_api_gateway_": "apigateway",
    "aws_caller_identity": "sts",
    "aws_cloudwatch_event_": "events",
    "aws_cloudwatch_log_": "logs",
    "aws_cloudwatch_metric_alarm": "cloudwatch",
    "aws_dynamodb_": "dynamodb",
    "aws_iam_": "iam",
    "aws_kms_": "kms",
    "aws_lambda_": "lambda",
    "aws_secretsmanager_": "secretsmanager",
    "aws_sns_": "sns",
    "aws_sqs_": "sqs",
    "aws_ssm_": "ssm",
    "aws_wafv2_": "wafv2",
}
# Data sources the provider computes without calling AWS.
LOCAL_TYPES = frozenset({"aws_iam_policy_document", "aws_partition", "aws_region"})
# STS whatever the configuration declares: the provider itself calls it for the account id.
ALWAYS_ENDPOINTS = frozenset({"sts"})

# Variables that, where declared, decide whether parts of the stack exist (their defaults
# follow var.environment, off outside prod): all on, so that all of it is applied.
STACK_TOGGLES = ("enable_waf", "use_customer_managed_keys", "enable_alarms")

# Two clinics, one with every setting, so the per-clinic API keys, usage plans, directory
# parameters and sending identities are all created.
CLINICS = {
    "sol": {
        "name": "Clínica Sol",
        "channels": ["whatsapp", "sms"],
        "sms_number": "+51987654321",
        "whatsapp_phone_number_id": "phone-number-id-def456",
        "hold_minutes": 45,
        "quota_per_day": 5000,
        "throttle_rate_limit": 20,
        "throttle_burst_limit": 40,
    },
    "luna": {"name": "Clínica Luna"},
}


@dataclass(frozen=True)
class Workaround:
    """One difference between moto and AWS, and what the override does about it."""

    address: str  # the resource block of the configuration, `type.name`
    what: str  # what the override changes there
    why: str  # the moto gap
    arguments: Mapping[str, str] = field(default_factory=dict)  # name -> HCL expression
    ignore_changes: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        """`address:argument`, unique among the workarounds."""
        return f"{self.address}:{next(iter(self.arguments), None) or self.ignore_changes[0]}"


_NO_REDRIVE_ALLOW_POLICY = (
    "moto's GetQueueAttributes never returns RedriveAllowPolicy (it is not among"
    " moto.sqs.models.Queue.BASE_ATTRIBUTES), so the provider waits for the attribute it set"
    " until it times out; the dead-letter queue then accepts any source queue"
)
_REDRIVE_POLICY_REFORMATTED = (
    "moto returns RedrivePolicy re-serialised by json.dumps (a space after each ':' and ','),"
    " not the JSON the provider set, so every plan shows a whitespace-only update of it"
)

WORKAROUNDS: tuple[Workaround, ...] = (
    Workaround(
        address="aws_api_gateway_rest_api.citas",
        what="the body without the path-level keys of the OpenAPI path items (`parameters`)",
        why="moto's PutRestApi (moto.apigateway.models.put_rest_api) takes every key of a path"
        " item for an HTTP method and fails with HTTP 500 on the path-level `parameters` list,"
        " which the provider retries until it times out; OpenAPI 3 and API Gateway allow them",
        arguments={
            "body": "jsonencode(merge(local.api_body, { paths = { for path, item in"
            " local.api_paths : path => { for key, value in item : key => value"
            " if contains(local.openapi_methods, key) } } }))"
        },
    ),
    Workaround(
        address="aws_sqs_queue_redrive_allow_policy.events_dlq",
        what="not created (count = 0)",
        why=_NO_REDRIVE_ALLOW_POLICY,
        arguments={"count": "0"},
    ),
    Workaround(
        address="aws_sqs_queue_redrive_allow_policy.booking_requests_dlq",
        what="not created (for_each = {})",
        why=_NO_REDRIVE_ALLOW_POLICY,
        arguments={"for_each": "{}"},
    ),
    Workaround(
        address="aws_sqs_queue.events",
        what="lifecycle ignore_changes = [redrive_policy]",
        why=_REDRIVE_POLICY_REFORMATTED,
        ignore_changes=("redrive_policy",),
    ),
    Workaround(
        address="aws_sqs_queue.booking_requests",
        what="lifecycle ignore_changes = [redrive_policy]",
        why=_REDRIVE_POLICY_REFORMATTED,
        ignore_changes=("redrive_policy",),
    ),
    Workaround(
        address="aws_lambda_function.this",
        what="lifecycle ignore_changes = [logging_config]",
        why="moto's Lambda keeps no LoggingConfig (CreateFunction drops it, GetFunction returns"
        " none), so every plan adds the JSON log format, levels and log group again",
        ignore_changes=("logging_config",),
    ),
    Workaround(
        address="aws_lambda_function.this",
        what="lifecycle ignore_changes = [dead_letter_config]",
        why="moto's Lambda keeps no DeadLetterConfig, so every plan adds the dead-letter queue"
        " of the asynchronously invoked functions again",
        ignore_changes=("dead_letter_config",),
    ),
    Workaround(
        address="aws_api_gateway_account.citas",
        what="reset_on_delete = false: destroy forgets the account setting, does not reset it",
        why="moto's UpdateAccount fails with HTTP 500 (KeyError in"
        " moto.apigateway.models.Account.apply_patch_operations) on the patch without a value"
        " that resets cloudwatchRoleArn, which the provider sends on destroy",
        arguments={"reset_on_delete": "false"},
    ),
)

_BLOCK = re.compile(r'^(resource|data)\s+"(aws_[a-z0-9_]+)"', re.MULTILINE)
_VARIABLE = re.compile(r'^variable\s+"([A-Za-z0-9_-]+)"', re.MULTILINE)


def _tf_sources(tf_dir: Path) -> Iterable[str]:
    # The configuration's own files: not an override file (ours, or anyone's).
    for path in sorted(tf_dir.glob("*.tf")):
        if not path.name.endswith("override.tf"):
            yield path.read_text(encoding="utf-8")


def resource_types(tf_dir: Path) -> set[str]:
    """Every AWS resource and data source type the configuration in `tf_dir` declares."""
    return {m[2] for text in _tf_sources(tf_dir) for m in _BLOCK.finditer(text)}


def declared_variables(tf_dir: Path) -> set[str]:
    """The names of the variables the configuration in `tf_dir` declares."""
    return {m[1] for text in _tf_sources(tf_dir) for m in _VARIABLE.finditer(text)}


def endpoints_for(types: Iterable[str]) -> set[str]:
    """The provider endpoints the given types call; a type of no known service is an error."""
    found = set(ALWAYS_ENDPOINTS)
    unknown = []
    for type_name in types:
        if type_name in LOCAL_TYPES:
            continue
        prefixes = [p for p in ENDPOINT_OF_TYPE if type_name.startswith(p)]
        if not prefixes:
            unknown.append(type_name)
            continue
        found.add(ENDPOINT_OF_TYPE[max(prefixes, key=len)])
    if unknown:
        # Without its endpoint the provider would send that service's calls to AWS itself.
        raise ValueError(
            f"no emulator endpoint for {', '.join(sorted(unknown))}: add its service to"
            " ENDPOINT_OF_TYPE in scripts/emulator_override.py (moto must emulate it)"
        )
    return found


def stack_variables(declared: set[str], lambda_zip: Path) -> dict[str, object]:
    """The variables of the emulated stack: every part of it on, two clinics, both senders."""
    chosen: dict[str, object] = {
        "lambda_zip": str(lambda_zip),
        "clinics": CLINICS,
        "sms_origination_identity": "pool-0123abcd",
        "whatsapp_phone_number_id": "phone-number-id-abc123",
        "alarm_email": "alarms@example.com",
        # So that destroy can delete the table, whatever the environment's default becomes.
        "deletion_protection": False,
        **{toggle: True for toggle in STACK_TOGGLES},
    }
    # Only what is declared: a toggle another version does not have is simply not set.
    return {name: value for name, value in chosen.items() if name in declared}


def _hcl_block(address: str, workarounds: list[Workaround]) -> str:
    # The reasons first, as comments, for whoever reads the generated file.
    lines = [
        f"# {line}"
        for w in workarounds
        for line in textwrap.wrap(f"{w.what}: {w.why}.", width=96, break_on_hyphens=False)
    ]
    type_name, name = address.split(".")
    lines.append(f'resource "{type_name}" "{name}" {{')
    arguments = [f"  {k} = {v}" for w in workarounds for k, v in w.arguments.items()]
    ignored = [attribute for w in workarounds for attribute in w.ignore_changes]
    lines += arguments
    if ignored:
        lines += [""] if arguments else []
        lines += ["  lifecycle {", f"    ignore_changes = [{', '.join(ignored)}]", "  }"]
    return "\n".join([*lines, "}"])


def emulator_override(
    endpoint: str, endpoints: Iterable[str], workarounds: Iterable[Workaround] = WORKAROUNDS
) -> str:
    """The override file's text: the provider on `endpoint`, then `workarounds` by resource.

    A plan alone needs none of them (each works around an emulator's answer to an apply), so
    tests/infra/test_checkov_plans.py passes none and scans the real configuration's plans.
    """
    width = max(len(name) for name in endpoints)
    endpoint_lines = [f'    {name:<{width}} = "{endpoint}"' for name in sorted(endpoints)]
    provider = [
        "# Generated by scripts/emulator_override.py for a stack on moto: never commit it.",
        'provider "aws" {',
        f'  access_key                  = "{ACCESS_KEY}"',
        f'  secret_key                  = "{SECRET_KEY}"',
        "  skip_credentials_validation = true",
        "  skip_requesting_account_id  = true",
        "  skip_metadata_api_check     = true",
        "  skip_region_validation      = true",
        # An emulator's 500 is a bug that retrying does not fix: fail in seconds, not minutes.
        "  max_retries                 = 3",
        "",
        "  endpoints {",
        *endpoint_lines,
        "  }",
        "}",
    ]
    by_address: dict[str, list[Workaround]] = {}
    for workaround in workarounds:
        by_address.setdefault(workaround.address, []).append(workaround)
    blocks = [_hcl_block(address, found) for address, found in by_address.items()]
    return "\n\n".join(["\n".join(provider), *blocks]) + "\n"


def write_emulator_files(tf_dir: Path, endpoint: str, lambda_zip: Path) -> dict[str, object]:
    """Write the override and the variables into the copy `tf_dir`; return the variables."""
    override = emulator_override(endpoint, endpoints_for(resource_types(tf_dir)))
    (tf_dir / OVERRIDE_FILE).write_text(override, encoding="utf-8")
    variables = stack_variables(declared_variables(tf_dir), lambda_zip)
    text = json.dumps(variables, indent=2, ensure_ascii=False)
    (tf_dir / VARIABLES_FILE).write_text(text + "\n", encoding="utf-8")
    return variables
