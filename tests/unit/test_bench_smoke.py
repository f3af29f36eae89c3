"""The benchmarks import and run one tiny iteration (nothing is timed or compared here)."""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
from collections import Counter
from typing import Any

import pytest

from bench import cold_start, common, cost, lean, report, warm

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
    "bench.lean",
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


def test_the_lean_order_rotates_and_every_booking_gets_a_free_slot() -> None:
    orders = [lean.rotation(i) for i in range(len(lean.OPERATIONS))]
    assert all(sorted(o) == sorted(lean.OPERATIONS) for o in orders)
    # Each operation runs first exactly once per cycle: no fixed neighbour.
    assert sorted(o[0] for o in orders) == sorted(lean.OPERATIONS)
    slots = [lean.slot_of(n, common.FIRST_DAY) for n in range(25)]
    assert len(set(slots)) == 25
    assert slots[10] == (common.FIRST_DAY + dt.timedelta(days=1), 0)
    lock = lean.lock_item("doc", common.local_start(common.FIRST_DAY, 0), "a1")
    assert lock["pk"] == {"S": "LOCK#doc#2027-01-05T13:00Z"}


def test_the_report_renders_a_lean_result() -> None:
    def fake_round(base: float) -> dict[str, dict[str, Any]]:
        return {
            name: {
                "latency_s": [base * (k + 1) + j / 1000 for j in range(5)],
                "round_trips": Counter({2: 5}),
                "calls": Counter({"1x GetItem + 1x TransactWriteItems": 5}),
                "items": Counter({4: 5}) if name != "floor" else Counter(),
                "unexpected": 0,
            }
            for k, name in enumerate(lean.OPERATIONS)
        }

    operations = lean._latencies([fake_round(0.01), fake_round(0.02)])
    assert operations["floor"]["ratio_to_floor"]["p50"] == 1.0
    assert operations["book"]["ratio_to_floor"]["p50"] > 1.5
    unit = {
        "calls": {"GetItem": 1, "TransactWriteItems": 1},
        "items_written": 4,
        "written": [{"kind": "APPT", "bytes": 576, "wru": 2}],
        "wru_table": 8.0,
        "wru_index": 3.0,
        "rru": 1.0,
        "doctor_guard_bytes_after": 97,
    }
    doc: dict[str, Any] = {
        "machine": common.machine(),
        "families": {
            "lean": {
                "quick": True,
                "calls_per_operation": 10,
                "rounds": 2,
                "operations": operations,
                "request_units": {"operations": {"book 30 min": unit}},
                "target": {
                    "what": "x",
                    "max_ratio": 1.5,
                    "max_wru_table": 10,
                    "book_p50_ratio": operations["book"]["ratio_to_floor"]["p50"],
                    "book_wru_table": 8.0,
                    "unexpected_outcomes": 0,
                    "met": False,
                },
            }
        },
    }
    text = report.markdown(doc)
    assert "#### Lean booking" in text
    assert "APPT 576 B: 2" in text


def test_percentiles_interpolate() -> None:
    assert common.percentile([1, 2, 3, 4], 50) == 2.5
    assert common.percentile([5], 99) == 5
    assert common.summary([])["n"] == 0
