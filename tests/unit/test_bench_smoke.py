"""The benchmarks import and run one tiny iteration (nothing is timed or compared here)."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import pytest

from bench import cold_start, common, cost, report, warm

# Powertools warns on every request without a metric; the handler module silences it, but
# pytest resets warning filters per test.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

BENCH_MODULES = [
    "bench.run",
    "bench.http_load",
    "bench.server",
    "bench.fuzz",
    "bench.scaling",
    "bench.contention",
    "bench.audit",
    "bench.ddb",
    "bench.soak",
]


@pytest.mark.parametrize("name", BENCH_MODULES)
def test_every_bench_module_imports(name: str) -> None:
    importlib.import_module(name)


def test_the_handler_modules_are_found() -> None:
    assert "entrypoints.lambda.http_api" in cold_start.handler_modules()


def test_a_cold_start_child_imports_and_builds() -> None:
    config = cold_start.Config(
        "http_api",
        cold_start.CHILD.format(module="entrypoints.lambda.http_api"),
        {"CITAS_BACKEND": "memory"},
        kind="handler",
        backend="memory",
    )
    config.run_once()
    assert config.error is None
    assert config.inner and config.inner[0]["boto3_loaded"] is False


def test_aws_item_sizes_follow_the_documented_rules() -> None:
    assert cost.item_size({"pk": {"S": "abc"}}) == 2 + 3
    # Numbers: 1 byte per two significant digits, plus 1; zeros at the ends do not count.
    assert cost.value_size({"N": "123"}) == 3
    assert cost.value_size({"N": "1000"}) == 2
    assert cost.value_size({"BOOL": True}) == 1
    # Maps and lists: 3 bytes, plus 1 per element, plus the elements (keys included).
    assert cost.value_size({"M": {"a": {"S": "xy"}}}) == 3 + 1 + 1 + 2
    assert cost.value_size({"L": [{"S": "x"}, {"N": "7"}]}) == 3 + (1 + 1) + (1 + 2)
    assert cost.write_units(1024) == 1
    assert cost.write_units(1025) == 2
    assert cost.read_units(4097, consistent=True) == 2
    assert cost.read_units(100, consistent=False) == 0.5


def test_a_tiny_warm_run_answers_every_call_as_expected() -> None:
    world = warm.WarmWorld(doctors=2, days=3, base_doctor_days=1)
    try:
        operations = warm.measure(world, 3)
    finally:
        world.close()
    assert set(operations) == set(warm.OPERATIONS)
    assert all(o["unexpected_status"] == 0 for o in operations.values())
    assert all(o["handler_s"]["n"] == 3 and o["use_case_s"]["n"] == 3 for o in operations.values())


def test_the_report_renders_a_partial_document() -> None:
    world = warm.WarmWorld(doctors=2, days=3, base_doctor_days=1)
    try:
        operations = warm.measure(world, 2)
    finally:
        world.close()
    doc: dict[str, Any] = {
        "machine": common.machine(),
        "families": {
            "warm": {
                "quick": True,
                "calls_per_operation": 2,
                "operations": operations,
                "target": {"what": "x", "max_ratio": 1.5, "worst": 9.0, "met": False},
            },
            "soak": {"run": False, "reason": "no script"},
        },
    }
    text = report.markdown(doc)
    assert "Quick run" in text
    assert "#### Warm latency" in text
    assert "Not run: no script" in text


def test_percentiles_interpolate() -> None:
    assert common.percentile([1, 2, 3, 4], 50) == 2.5
    assert common.percentile([5], 99) == 5
    assert common.summary([])["n"] == 0
