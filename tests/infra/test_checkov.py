"""Checkov on infra/terraform: no failed check, and every skipped one says why.

Checkov runs from its own virtual environment, `.venv-tools` (mk/infra.mk installs it with
`make install`), because it pins many libraries the project also uses (boto3, ...).
"""

from __future__ import annotations

import json
import re
import subprocess
from functools import cache
from typing import Any

import pytest

from tests.infra.terraform import ROOT, TF_DIR, tf_files

CHECKOV = ROOT / ".venv-tools" / "bin" / "checkov"


@cache
def report() -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: run `make install` (mk/infra.mk installs checkov)")
    done = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            str(TF_DIR),
            "--framework",
            "terraform",
            "--compact",
            # Offline: no download of guidelines or policies from the vendor's platform.
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    # Exit code 1 means failed checks; the JSON report is on stdout either way.
    assert done.stdout.strip(), done.stderr[-4000:]
    parsed = json.loads(done.stdout)
    reports = parsed if isinstance(parsed, list) else [parsed]
    terraform = [r for r in reports if r.get("check_type") == "terraform"]
    assert len(terraform) == 1, [r.get("check_type") for r in reports]
    result: dict[str, Any] = terraform[0]
    return result


def test_checkov_reports_no_failed_check() -> None:
    summary = report()["summary"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for c in report()["results"].get("failed_checks", [])
    ]
    assert summary["failed"] == 0, "\n".join(failed)
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 100, summary


def test_every_check_checkov_skipped_carries_a_reason() -> None:
    skipped = report()["results"].get("skipped_checks", [])
    assert skipped, "nothing skipped: the skip comments of the .tf files were not read"
    for check in skipped:
        reason = (check.get("check_result") or {}).get("suppress_comment") or ""
        assert len(reason.strip()) >= 20, f"{check['check_id']} on {check['resource']}: {reason!r}"


def test_checkov_skips_exactly_what_the_tf_files_ask_it_to() -> None:
    written: set[str] = set()
    for path in tf_files():
        written |= set(re.findall(r"#checkov:skip=([A-Z0-9_]+):", path.read_text("utf-8")))
    applied = {c["check_id"] for c in report()["results"].get("skipped_checks", [])}
    # A skip checkov no longer applies is a stale excuse: remove it.
    assert applied == written
