"""infra/terraform applied for real, to moto's AWS emulator: apply, plan again, destroy.

The same steps as `make deploy-local` (scripts/deploy_local.py): a moto server on a free port,
a copy of the configuration with a generated override that points every AWS service at it,
every part of the stack on (WAF, the stack's KMS keys, alarms) and two clinics. The Lambda
functions get the real artifact, built by scripts/package_lambda.py (seconds, from the wheel
cache tests/infra/test_lambda_package.py fills). Then: the apply succeeds, the outputs and
boto3 against moto show what was created, a second `plan -detailed-exitcode` exits 0 (no
change), and after `destroy` the state is empty.

What moto does not do as AWS does is worked around in the override only; each workaround is
reported here as a skipped test, `test_emulator_gap[<address>:<argument>]`, with its reason.

It takes about 4 minutes, most of it the AWS provider waiting for resources to settle (it
polls each queue for 20 s, creates functions one at a time), so `make test` runs this module
in a pytest process of its own beside the rest of the suite (Makefile, `pytest`). It needs
`terraform` on the PATH (skipped otherwise) and the AWS provider, from TF_PLUGIN_DIR or
/opt/tf-plugins when there, else from the registry.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from scripts.deploy_local import (
    EmulatedStack,
    Lifecycle,
    emulated_stack,
    planned_changes,
    run_lifecycle,
    sigterm_as_interrupt,
)
from scripts.emulator_override import (
    ACCESS_KEY,
    ACCOUNT_ID,
    CLINICS,
    REGION,
    SECRET_KEY,
    WORKAROUNDS,
    Workaround,
    emulator_override,
    endpoints_for,
    resource_types,
)
from scripts.terraform_cli import INIT_FAILED, TF_DIR, terraform_binary
from tests.infra.checkov_plans import CHECKED_ON_PLANS, DEV_ONLY, failed, passed, scan

# The whole lifecycle is one fixture, well over pytest-timeout's default of 300 s under load.
pytestmark = pytest.mark.timeout(1800)

needs_terraform = pytest.mark.skipif(
    terraform_binary() is None, reason="terraform is not on the PATH"
)

PREFIX = "citas-dev"
COUNTRIES = ("PE", "CL")  # var.countries' default
# Every function of lambda.tf and the handler it runs.
HANDLERS = {
    "http-api": "http_api",
    "outbox-relay": "outbox_relay",
    "notifications": "notifications",
    "reminders": "reminders",
    "offers-sweeper": "offers_sweeper",
    "patient-pages": "patient_pages",
    "inbound-sms": "inbound_sms",
    "inbound-whatsapp": "inbound_whatsapp",
    **{f"booking-worker-{c.lower()}": "booking_worker" for c in COUNTRIES},
}
FUNCTIONS = {f"{PREFIX}-{key}": f"entrypoints.lambda.{h}.handler" for key, h in HANDLERS.items()}


@dataclass(frozen=True)
class Seen:
    """What boto3 found on moto while the stack was up."""

    table: dict[str, Any]
    time_to_live: dict[str, Any]
    backups: dict[str, Any]
    functions: dict[str, dict[str, Any]]
    clinic_parameters: dict[str, dict[str, Any]]
    usage_plans: dict[str, dict[str, Any]]
    api_keys: dict[str, str]
    web_acls: list[str]
    stage_web_acl: str  # the name of the web ACL the API stage is associated with
    event_sources: dict[str, str]  # function name -> the ARN of what invokes it
    kms_aliases: dict[str, str]


def _client(stack: EmulatedStack, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=stack.endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def _inspect(stack: EmulatedStack) -> Seen:
    dynamodb = _client(stack, "dynamodb")
    lambdas = _client(stack, "lambda")
    apigateway = _client(stack, "apigateway")
    wafv2 = _client(stack, "wafv2")
    found = _client(stack, "ssm").get_parameters_by_path(Path=f"/{PREFIX}/clinics")
    keys = apigateway.get_api_keys(includeValues=True)["items"]
    api = next(a for a in apigateway.get_rest_apis()["items"] if a["name"] == f"{PREFIX}-api")
    stage = f"arn:aws:apigateway:{REGION}::/restapis/{api['id']}/stages/v1"
    mappings = lambdas.list_event_source_mappings()["EventSourceMappings"]
    return Seen(
        table=dynamodb.describe_table(TableName=PREFIX)["Table"],
        time_to_live=dynamodb.describe_time_to_live(TableName=PREFIX)["TimeToLiveDescription"],
        backups=dynamodb.describe_continuous_backups(TableName=PREFIX)[
            "ContinuousBackupsDescription"
        ],
        functions={f["FunctionName"]: f for f in lambdas.list_functions(MaxItems=50)["Functions"]},
        clinic_parameters={p["Name"]: json.loads(p["Value"]) for p in found["Parameters"]},
        usage_plans={p["name"]: p for p in apigateway.get_usage_plans()["items"]},
        api_keys={k["id"]: k["value"] for k in keys},
        web_acls=[a["Name"] for a in wafv2.list_web_acls(Scope="REGIONAL")["WebACLs"]],
        stage_web_acl=wafv2.get_web_acl_for_resource(ResourceArn=stage)["WebACL"]["Name"],
        event_sources={m["FunctionArn"].split(":")[-1]: m["EventSourceArn"] for m in mappings},
        kms_aliases={
            a["AliasName"]: a.get("TargetKeyId", "")
            for a in _client(stack, "kms").list_aliases()["Aliases"]
        },
    )


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory: pytest.TempPathFactory) -> Lifecycle[Seen]:
    root = tmp_path_factory.mktemp("emulated-stack")
    with sigterm_as_interrupt(), emulated_stack(root) as (stack, moto):
        init = stack.init()
        if not init.ok:
            pytest.fail(f"{INIT_FAILED}:\n{init.tail()}")
        life = run_lifecycle(stack, _inspect)
        moto_log = moto.log_tail()
    print(f"terraform on moto: {life.timings()}")
    if not life.apply.ok:
        pytest.fail(f"terraform apply failed:\n{life.apply.tail()}\n--- moto ---\n{moto_log}")
    return life


@pytest.fixture(scope="module")
def seen(lifecycle: Lifecycle[Seen]) -> Seen:
    assert lifecycle.inspected is not None
    return lifecycle.inspected


# --- the override itself: no terraform needed ------------------------------------------------


def test_every_aws_service_of_the_configuration_has_an_emulator_endpoint() -> None:
    endpoints = endpoints_for(resource_types(TF_DIR))
    override = emulator_override("http://127.0.0.1:1", endpoints)
    assert {"apigateway", "dynamodb", "lambda", "sqs", "sns", "ssm", "sts"} <= endpoints
    for name in endpoints:
        assert re.search(rf'^\s+{name}\s+= "http://127.0.0.1:1"$', override, re.MULTILINE), name


def test_an_aws_service_without_an_endpoint_is_refused() -> None:
    with pytest.raises(ValueError, match="aws_s3_bucket"):
        endpoints_for({"aws_s3_bucket", "aws_sqs_queue"})


def test_every_workaround_names_a_resource_of_the_configuration() -> None:
    # An override block without its resource is an error; this says which entry is stale.
    declared = "".join(p.read_text(encoding="utf-8") for p in TF_DIR.glob("*.tf"))
    for workaround in WORKAROUNDS:
        type_name, name = workaround.address.split(".")
        assert f'resource "{type_name}" "{name}"' in declared, workaround.address


@pytest.mark.parametrize("workaround", WORKAROUNDS, ids=lambda w: w.id)
def test_emulator_gap(workaround: Workaround) -> None:
    pytest.skip(f"{workaround.address}: {workaround.what}. Why: {workaround.why}")


# --- the lifecycle -----------------------------------------------------------------------------


@needs_terraform
def test_the_whole_stack_is_applied(lifecycle: Lifecycle[Seen]) -> None:
    state = set(lifecycle.state_after_apply)
    for address in (
        "aws_wafv2_web_acl.api[0]",
        "aws_wafv2_web_acl_association.api[0]",
        "aws_wafv2_web_acl_logging_configuration.api[0]",
        "aws_kms_key.citas[0]",
        "aws_kms_key.observability[0]",
        "aws_sns_topic.alarms[0]",
        "aws_sns_topic_subscription.alarm_email[0]",
        'aws_cloudwatch_metric_alarm.this["http-api-errors"]',
        "aws_api_gateway_stage.citas",
        "aws_lambda_event_source_mapping.outbox_stream",
        *(f'aws_api_gateway_usage_plan_key.clinic["{c}"]' for c in CLINICS),
        *(f'aws_ssm_parameter.clinic["{c}"]' for c in CLINICS),
    ):
        assert address in state, address
    functions = {a for a in state if a.startswith("aws_lambda_function.this[")}
    assert len(functions) == len(FUNCTIONS)


@needs_terraform
def test_the_outputs_are_the_deployed_stack(lifecycle: Lifecycle[Seen]) -> None:
    out = lifecycle.outputs
    declared = set(re.findall(r'^output "(\w+)"', (TF_DIR / "outputs.tf").read_text(), re.M))
    assert set(out) == declared
    assert re.fullmatch(
        r"https://[a-z0-9]+\.execute-api\.us-east-1\.amazonaws\.com/v1", out["api_url"]
    )
    assert out["public_base_url"] == out["api_url"]
    assert out["table_name"] == PREFIX
    assert out["events_queue_name"] == f"{PREFIX}-events.fifo"
    assert out["booking_queue_names"] == {
        c: f"{PREFIX}-booking-requests-{c.lower()}.fifo" for c in COUNTRIES
    }
    assert set(out["function_names"].values()) == set(FUNCTIONS)
    assert out["alarm_topic_arn"] == f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{PREFIX}-alarms"
    assert out["link_keys_parameter"] == "/citas/dev/link-keys"
    assert set(out["clinic_api_key_ids"]) == set(out["clinic_api_keys"]) == set(CLINICS)
    assert all(len(key) >= 20 for key in out["clinic_api_keys"].values())


@needs_terraform
def test_the_table_has_its_keys_indexes_stream_ttl_backups_and_key(seen: Seen) -> None:
    table = seen.table
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {"gsi1", "gsi2"}
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    assert seen.time_to_live == {"AttributeName": "expires_at", "TimeToLiveStatus": "ENABLED"}
    recovery = seen.backups["PointInTimeRecoveryDescription"]
    assert recovery["PointInTimeRecoveryStatus"] == "ENABLED"
    # Encrypted with the stack's own data key, the one alias/citas-dev names.
    data_key = seen.kms_aliases["alias/citas-dev"]
    assert table["SSEDescription"]["KMSMasterKeyArn"].endswith(f":key/{data_key}")


@needs_terraform
def test_every_function_runs_the_real_artifact_with_its_handler(
    seen: Seen, lifecycle: Lifecycle[Seen]
) -> None:
    assert set(seen.functions) == set(FUNCTIONS)
    artifact = Path(str(lifecycle.variables["lambda_zip"])).read_bytes()
    digest = base64.b64encode(hashlib.sha256(artifact).digest()).decode()
    for name, handler in FUNCTIONS.items():
        function = seen.functions[name]
        assert function["Handler"] == handler, name
        assert (function["Runtime"], function["Architectures"]) == ("python3.12", ["arm64"])
        assert function["CodeSha256"] == digest, name
        settings = function["Environment"]["Variables"]
        assert settings["CITAS_TABLE_NAME"] == PREFIX
        assert settings["CITAS_CLINICS_PARAMETER_PATH"] == f"/{PREFIX}/clinics"


@needs_terraform
def test_each_clinic_has_its_key_usage_plan_and_directory_entry(
    seen: Seen, lifecycle: Lifecycle[Seen]
) -> None:
    ids = lifecycle.outputs["clinic_api_key_ids"]
    for clinic, settings in CLINICS.items():
        entry = seen.clinic_parameters[f"/{PREFIX}/clinics/{clinic}"]
        assert (entry["clinic_id"], entry["name"]) == (clinic, settings["name"])
        assert entry["api_key_id"] == ids[clinic]
        assert seen.api_keys[ids[clinic]] == lifecycle.outputs["clinic_api_keys"][clinic]
    sol, luna = seen.usage_plans[f"{PREFIX}-sol"], seen.usage_plans[f"{PREFIX}-luna"]
    assert (sol["throttle"]["rateLimit"], sol["throttle"]["burstLimit"]) == (20, 40)
    assert (sol["quota"]["limit"], sol["quota"]["period"]) == (5000, "DAY")
    assert (luna["quota"]["limit"], luna["quota"]["period"]) == (1000000, "MONTH")


@needs_terraform
def test_the_waf_guards_the_stage_and_the_queues_and_stream_invoke_their_consumers(
    seen: Seen,
) -> None:
    assert seen.web_acls == [f"{PREFIX}-api"]
    assert seen.stage_web_acl == f"{PREFIX}-api"
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{PREFIX}"
    assert seen.event_sources[f"{PREFIX}-notifications"] == f"{queue}-events.fifo"
    for c in COUNTRIES:
        source = seen.event_sources[f"{PREFIX}-booking-worker-{c.lower()}"]
        assert source == f"{queue}-booking-requests-{c.lower()}.fifo"
    stream = seen.event_sources[f"{PREFIX}-outbox-relay"]
    assert stream == seen.table["LatestStreamArn"]


@needs_terraform
def test_a_second_plan_is_empty(lifecycle: Lifecycle[Seen]) -> None:
    plan = lifecycle.plan
    assert plan is not None
    assert plan.returncode == 0, (
        f"the plan after the apply would change: {planned_changes(plan)}\n{plan.tail()}"
    )


@needs_terraform
def test_destroy_leaves_an_empty_state(lifecycle: Lifecycle[Seen]) -> None:
    destroy = lifecycle.destroy
    assert destroy is not None
    assert destroy.ok, destroy.tail()
    assert lifecycle.state_after_destroy == []


@needs_terraform
def test_checkov_passes_the_plan_of_the_applied_stack(
    lifecycle: Lifecycle[Seen], tmp_path: Path
) -> None:
    # Every part on, as in prod; after the apply the plan knows every value, the keys' ARNs
    # included (tests/infra/checkov_plans.py says why a new stack's plan does not).
    assert lifecycle.plan_json is not None
    report = scan(lifecycle.plan_json, tmp_path / "applied.json")
    assert failed(report) == {}
    assert report["summary"]["passed"] > 100, report["summary"]
    # What the source only skips is checked and passed here, and so is every check a dev
    # stack fails: each of those is its variables' doing, not a defect of both.
    assert CHECKED_ON_PLANS | set(DEV_ONLY) <= passed(report)
