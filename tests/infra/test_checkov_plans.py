"""The plans of a new dev and a new prod stack, planned against moto, and checkov on dev's.

scripts/deploy_local.py's copy of the configuration, its provider pointed at a moto server (no
workaround: a plan needs none), planned with every variable at its default for `dev` and for
`prod`. A dev plan creates no WAF, no KMS key and no alarm, a prod plan all three; checkov on
the dev plan fails exactly the checks of DEV_ONLY (tests/infra/checkov_plans.py), each because
a variable whose default follows the environment is off there. The prod side of the scan is
the plan of the stack applied to moto (tests/infra/test_terraform_apply.py), which knows the
keys' ARNs a new stack's plan does not.

Skipped without terraform on the PATH; it runs in the pytest process of the apply (Makefile,
`pytest`), beside the rest of the suite.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

from scripts.deploy_local import EmulatedStack, MotoServer
from scripts.emulator_override import (
    OVERRIDE_FILE,
    VARIABLES_FILE,
    emulator_override,
    endpoints_for,
    resource_types,
)
from scripts.terraform_cli import INIT_FAILED, terraform_binary
from tests.infra.checkov_plans import DEV_ONLY, failed, scan

pytestmark = [
    pytest.mark.skipif(terraform_binary() is None, reason="terraform is not on the PATH"),
    pytest.mark.timeout(1200),
]


class Plans:
    """One copy of the configuration on moto, planned for each environment."""

    def __init__(self, stack: EmulatedStack) -> None:
        self.stack = stack
        # No workaround: they answer an apply's calls, and a plan makes none of them.
        override = emulator_override(
            stack.endpoint, endpoints_for(resource_types(stack.workdir)), workarounds=()
        )
        (stack.workdir / OVERRIDE_FILE).write_text(override, encoding="utf-8")

    def plan(self, environment: str) -> dict[str, Any]:
        """The plan of a new stack of `environment`, every other variable at its default."""
        variables = {"lambda_zip": self.stack.variables["lambda_zip"], "environment": environment}
        (self.stack.workdir / VARIABLES_FILE).write_text(json.dumps(variables), encoding="utf-8")
        out = f"{environment}.tfplan"
        planned = self.stack.plan(out)
        assert planned.returncode == 2, planned.tail()  # 2: changes, a whole stack to create
        return self.stack.show(out)

    @cached_property
    def dev(self) -> dict[str, Any]:
        """The dev plan."""
        return self.plan("dev")

    @cached_property
    def prod(self) -> dict[str, Any]:
        """The prod plan."""
        return self.plan("prod")


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plans]:
    root = tmp_path_factory.mktemp("checkov-plans")
    # A plan hashes the artifact but never uploads it: any zip will do.
    artifact = root / "lambda.zip"
    with zipfile.ZipFile(artifact, "w") as archive:
        archive.writestr("placeholder.txt", "planned, never deployed")
    with MotoServer(root / "moto.log") as moto:
        stack = EmulatedStack(root, moto.url, artifact)
        initialised = stack.init()
        if not initialised.ok:
            pytest.fail(f"{INIT_FAILED}:\n{initialised.tail()}")
        yield Plans(stack)


def created(plan: dict[str, Any], type_name: str) -> list[str]:
    """The addresses of the resources of `type_name` a plan creates."""
    return [
        change["address"]
        for change in plan["resource_changes"]
        if change["type"] == type_name and "create" in change["change"]["actions"]
    ]


def test_a_dev_plan_creates_no_waf_no_key_and_no_alarm(plans: Plans) -> None:
    for type_name in ("aws_wafv2_web_acl", "aws_kms_key", "aws_cloudwatch_metric_alarm"):
        assert created(plans.dev, type_name) == [], type_name
    # The stack itself is all there.
    assert len(created(plans.dev, "aws_lambda_function")) == 10
    assert created(plans.dev, "aws_dynamodb_table") == ["aws_dynamodb_table.citas"]


def test_a_prod_plan_creates_the_waf_both_keys_and_the_alarms(plans: Plans) -> None:
    assert created(plans.prod, "aws_wafv2_web_acl") == ["aws_wafv2_web_acl.api[0]"]
    assert created(plans.prod, "aws_wafv2_web_acl_association") == [
        "aws_wafv2_web_acl_association.api[0]"
    ]
    assert sorted(created(plans.prod, "aws_kms_key")) == [
        "aws_kms_key.citas[0]",
        "aws_kms_key.observability[0]",
    ]
    assert len(created(plans.prod, "aws_cloudwatch_metric_alarm")) == 34


def test_checkov_on_the_dev_plan_fails_only_what_its_variables_turn_off(
    plans: Plans, tmp_path: Path
) -> None:
    report = scan(plans.dev, tmp_path / "dev.json")
    assert set(failed(report)) == set(DEV_ONLY), failed(report)
    assert report["summary"]["passed"] > 100, report["summary"]
