"""The Postman collection of api/ runs green with newman against a fresh `citas serve`."""

from __future__ import annotations

import subprocess

import pytest

from .conftest import REPO_ROOT, Launcher

COLLECTION = REPO_ROOT / "api" / "citas.postman_collection.json"
NEWMAN = REPO_ROOT / "node_modules" / ".bin" / "newman"


def test_the_postman_collection_passes_against_the_local_server(start_citas: Launcher) -> None:
    if not NEWMAN.exists():
        pytest.fail(
            f"newman is missing ({NEWMAN}). Run `make test`: it installs the npm dev tools "
            "(newman included) before running the suite.",
            pytrace=False,
        )
    # A server of its own: the collection lists every requested appointment of PE and must
    # find its own among them, whatever the other tests booked.
    server = start_citas()
    result = subprocess.run(
        [
            str(NEWMAN),
            "run",
            str(COLLECTION),
            "--env-var",
            f"baseUrl={server.base_url}",
            "--env-var",
            f"apiKey={server.api_key}",
            "--reporters",
            "cli",
            "--color",
            "off",
            "--timeout-request",
            "10000",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"newman failed:\n{result.stdout[-6000:]}\n{result.stderr}"
    assert server.stop() == 0
