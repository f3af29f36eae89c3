"""Checkov on plans (`terraform show -json`): the skips, the dev-only failures, the scan.

On the source (tests/infra/test_checkov.py) checkov cannot evaluate what a stack's variables
decide: a resource whose `count` is 0 is checked as if it existed, a local that names a key or
null passes as a key. A plan holds the values themselves, but only those known before an apply:
in the plan of a new stack the ARNs of its own KMS keys are unknown, and checkov reads them as
absent. So the two environments are scanned where their values are known:

- dev (tests/infra/test_checkov_plans.py): the plan of a new dev stack, whose encryption
  settings are null (known) where a key would be; it fails exactly DEV_ONLY.
- every part on, as prod has it (tests/infra/test_terraform_apply.py): the plan of the stack
  applied to moto, which knows every value; it fails nothing.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from scripts.terraform_cli import ROOT, TF_DIR

CHECKOV = ROOT / ".venv-tools" / "bin" / "checkov"

# What a dev stack fails, by check: each because of a variable that is off outside prod.
DEV_ONLY = {
    "CKV_AWS_119": "use_customer_managed_keys is off: the table is encrypted with DynamoDB's "
    "own key, at no charge, not with a key of the stack's",
    "CKV_AWS_158": "use_customer_managed_keys is off: the log groups use CloudWatch Logs' own "
    "encryption",
    "CKV_AWS_26": "use_customer_managed_keys is off: the SNS topics are not encrypted at rest, "
    "as End User Messaging and CloudWatch cannot publish to a topic under aws/sns",
    "CKV_AWS_337": "use_customer_managed_keys is off: the parameters are encrypted with aws/ssm",
    "CKV2_AWS_29": "enable_waf is off: no web ACL in front of the stage",
}
# Skipped on the source with a reason, and checked on the plans.
CHECKED_ON_PLANS = {"CKV_AWS_119"}


def source_skips() -> dict[str, str]:
    """The checks the .tf files' `#checkov:skip=` comments skip, with their reasons."""
    found: dict[str, str] = {}
    for path in sorted(TF_DIR.glob("*.tf")):
        found.update(re.findall(r"#checkov:skip=([A-Z0-9_]+):(.*)", path.read_text("utf-8")))
    return found


def skipped_on_plans() -> set[str]:
    """What the source skips with a reason, but for what the plans check."""
    return set(source_skips()) - CHECKED_ON_PLANS


def scan(plan: dict[str, Any], where: Path) -> dict[str, Any]:
    """Checkov's report on a plan, the source's skips (but CHECKED_ON_PLANS) skipped."""
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: run `make install` (mk/infra.mk installs it)")
    where.write_text(json.dumps(plan), encoding="utf-8")
    command = [str(CHECKOV), "--file", str(where), "--framework", "terraform_plan"]
    command += ["--compact", "--skip-download", "--output", "json"]
    command += ["--skip-check", ",".join(sorted(skipped_on_plans()))]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, check=False, cwd=ROOT
    )
    assert done.stdout.strip(), done.stderr[-4000:]
    parsed = json.loads(done.stdout)
    reports = parsed if isinstance(parsed, list) else [parsed]
    (report,) = [r for r in reports if r.get("check_type") == "terraform_plan"]
    result: dict[str, Any] = report
    return result


def failed(report: dict[str, Any]) -> dict[str, list[str]]:
    """The failed checks of a report: check id -> the resources failing it."""
    found: dict[str, list[str]] = {}
    for check in report["results"].get("failed_checks", []):
        found.setdefault(check["check_id"], []).append(check["resource"])
    return found


def passed(report: dict[str, Any]) -> set[str]:
    """The ids of the checks some resource of the plan passed."""
    return {c["check_id"] for c in report["results"].get("passed_checks", [])}
