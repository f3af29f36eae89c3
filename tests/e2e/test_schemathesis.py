"""Property-based conformance of the running server to api/openapi.yaml (schemathesis 4).

Every operation of the document is exercised with its examples, schemathesis' coverage
cases and generated data (valid and invalid), with the real `x-api-key`. Every response
must be documented (status code, content type, headers, body schema), never a 5xx, and a
request the document forbids must be refused. A second test chains calls (stateful phase).

Two built-in checks do not apply to this API and are left out on purpose:
* `positive_data_acceptance` expects every schema-valid request to succeed, but most are
  refused by rules a schema cannot state (working hours, slot grid, the two list filter
  combinations, a doctor that exists), with documented 4xx answers.
* `use_after_free` expects 404 after DELETE, but DELETE cancels: the contract keeps the record
  (status `cancelled`), so it is still readable.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings

from .conftest import REPO_ROOT, Launcher, RunningServer

OPENAPI = REPO_ROOT / "api" / "openapi.yaml"
ST = Path(sys.executable).parent / "st"
MAX_EXAMPLES = 30
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "ignored_auth",
]


# Loaded at import, so each operation is its own test item. The server's URL and key are only
# known once the session fixture started it: they are passed to each call. (The lazy
# `schemathesis.pytest.from_fixture` loader would be neater, but schemathesis 4.32 reads
# `request.node._nodeid`, which pytest 9 no longer has.)
schema = schemathesis.openapi.from_path(OPENAPI)
schema.config.generation.update(
    max_examples=MAX_EXAMPLES,
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    deterministic=True,
)
schema.config.checks.update(included_check_names=CHECKS)
# A request refused for its size (`413 payload_too_large`, over 16 KiB) is refused all the
# same: negative data may be generated that large.
_rejection = schema.config.checks.negative_data_rejection
# A new list: the default one is shared by every config of the process.
_rejection.expected_statuses = [*_rejection.expected_statuses, "413"]


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_operation_answers_as_the_openapi_document_says(
    case: schemathesis.Case, server: RunningServer
) -> None:
    case.call_and_validate(
        base_url=server.base_url, headers={"x-api-key": server.api_key}, timeout=15
    )


def test_linked_calls_answer_as_the_openapi_document_says(start_citas: Launcher) -> None:
    # Stateful phase of the `st` CLI: it infers links between operations (POST /appointments
    # → GET, PATCH, DELETE, status of the id it returned, ...), so later calls reach real
    # appointments instead of 404s. The examples phase runs first to create the document's
    # example doctor the links start from. On a server of its own, with a fixed seed.
    server = start_citas()
    result = subprocess.run(
        [
            str(ST),
            "run",
            str(OPENAPI),
            "--url",
            server.base_url,
            "--header",
            f"x-api-key: {server.api_key}",
            "--checks",
            ",".join(CHECKS),
            "--phases",
            "examples,stateful",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--workers",
            "1",
            "--seed",
            "1",
            "--no-color",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert result.returncode == 0, f"schemathesis failed:\n{result.stdout[-8000:]}\n{result.stderr}"
