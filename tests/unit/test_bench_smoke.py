"""The benchmarks import and run one tiny iteration (nothing is timed or compared here)."""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bench import cold_start, common, cost, lean, load, report, warm

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
    "bench.load",
    "bench.report_tables",
    "bench.bare_resolver",
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


# --- the machine's load around a family (bench/load.py) ------------------------------------

PROC_STAT = """cpu  5200370 8486 424113 4756644 44795 0 35486 53862 0 0
cpu0 2600000 4000 212000 2378000 22000 0 17000 27000 0 0
intr 123456
"""


def test_proc_stat_reads_the_aggregate_cpu_line() -> None:
    times = load.parse_proc_stat(PROC_STAT)
    assert times is not None
    # idle + iowait are idle; steal counts as busy; guest fields are inside user and nice.
    assert times.total == 5200370 + 8486 + 424113 + 4756644 + 44795 + 0 + 35486 + 53862
    assert times.busy == times.total - (4756644 + 44795)
    assert load.parse_proc_stat("intr 1\n") is None
    # An old kernel's shorter line still parses.
    assert load.parse_proc_stat("cpu 10 0 10 80\n") == load.CpuTimes(busy=20, total=100)


def test_busy_share_is_the_non_idle_part_between_two_readings() -> None:
    before, after = load.CpuTimes(busy=100, total=1000), load.CpuTimes(busy=150, total=1200)
    assert load.busy_share(before, after) == 0.25
    assert load.busy_share(after, after) is None
    assert load.busy_share(None, after) is None


def _quiet_load(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "load_1min_before": 0.3,
        "load_1min_own_estimate_before": 0.0,
        "busy_share_before": 0.02,
        "pre_start_sample_s": 2.0,
        "other_share_during": 0.03,
    }
    return record | changes


def test_a_quiet_machine_is_not_noisy() -> None:
    assert load.noisy_reasons(_quiet_load()) == []
    # An older or partial record (no /proc/stat, no load average) is not called noisy either.
    assert load.noisy_reasons({}) == []


def test_each_sign_of_other_load_makes_a_family_noisy() -> None:
    busy = load.noisy_reasons(_quiet_load(busy_share_before=0.4))
    assert len(busy) == 1 and "40 % of the CPU busy in the 2.0 s before" in busy[0]
    loaded = load.noisy_reasons(_quiet_load(load_1min_before=1.6))
    assert loaded == ["1-min load average 1.60 at the start (> 1)"]
    later = load.noisy_reasons(_quiet_load(load_1min_before=2.6, load_1min_own_estimate_before=1.2))
    assert later == [
        "1-min load average 2.60 at the start, 1.40 beyond this run's own earlier families (> 1)"
    ]
    other = load.noisy_reasons(_quiet_load(other_share_during=0.3))
    assert len(other) == 1 and "about 30 % of the CPU during the run" in other[0]


def test_the_runs_own_earlier_load_is_not_counted_as_noise() -> None:
    # 1.6 at the start, of which 1.2 lingers from the run's previous family: 0.4 is others'.
    assert (
        load.noisy_reasons(_quiet_load(load_1min_before=1.6, load_1min_own_estimate_before=1.2))
        == []
    )
    assert load.decayed(1.0, 0.0) == 1.0
    assert abs(load.decayed(1.0, 60.0) - math.exp(-1)) < 1e-9
    assert abs(load.decayed(0.0, 60.0, level=2.0) - 2 * (1 - math.exp(-1))) < 1e-9


def test_the_runs_own_load_is_what_the_others_do_not_explain() -> None:
    # From 0.5 (all others') to 2.0 in 60 s, the others using no CPU: the rest is the run's.
    others = 0.5 * math.exp(-1)
    own = load.own_load_after(0.0, 0.5, 2.0, 60.0, own_runnable=1.0, other_runnable=0.0)
    assert abs(own - (2.0 - others)) < 1e-9
    # Never more than the load average itself, never less than its own CPU explains.
    assert load.own_load_after(0.0, 0.0, 0.1, 60.0, own_runnable=2.0, other_runnable=0.0) == 0.1
    assert load.own_load_after(0.0, None, None, 60.0, 1.0, 0.0) == load.decayed(0.0, 60.0, 1.0)


def test_a_load_meter_records_every_key_of_a_family() -> None:
    meter = load.LoadMeter(sample_seconds=0.0)
    record = meter.after(meter.before())
    for key in ("load_1min_before", "load_1min_after", "busy_share_before", "own_cpu_s"):
        assert key in record
    assert isinstance(record["noisy"], bool)
    assert record["noisy"] == bool(record["noisy_reasons"])


def test_a_family_run_records_its_server_and_load(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from bench import run

    monkeypatch.setattr(run, "_runner", lambda family: lambda q, results_dir: {"answer": 42})
    meter = load.LoadMeter(sample_seconds=0.0)
    result = run.run_family("cold_start", common.Quick(True), tmp_path, meter)
    assert result["answer"] == 42 and result["quick"] is True
    assert result["server"]["kind"] == "none"
    assert "noisy" in result["load"]

    def broken(q: Any, results_dir: Path) -> dict[str, Any]:
        raise RuntimeError("no java")

    monkeypatch.setattr(run, "_runner", lambda family: broken)
    failed = run.run_family("lean", common.Quick(True), tmp_path, meter)
    assert failed["error"] == "RuntimeError: no java"
    assert failed["server"] == {"kind": "none", "why": "started no DynamoDB Local"}


def test_a_family_that_started_no_server_has_none_to_stop() -> None:
    from bench import ddb

    assert ddb.end_family("http") is None


# --- warm: the bare resolver ------------------------------------------------------------------


def test_the_bare_resolver_answers_the_handlers_event_routed_to_ping() -> None:
    from tests.unit import apigw

    event = apigw.event("GET", "/appointments/abc", query={"x": "1"})
    ping = warm.ping_event(event)
    assert ping["path"] == "/ping" and ping["requestContext"]["resourcePath"] == "/ping"
    assert ping["multiValueHeaders"] == event["multiValueHeaders"]
    assert ping["queryStringParameters"] == {"x": "1"}
    assert event["path"] == "/appointments/abc"  # the handler's event is left as it was
    answer = warm.bare_resolver()(ping, apigw.FakeLambdaContext())
    assert answer["statusCode"] == 200 and json.loads(answer["body"]) == {"ok": True}


def test_the_warm_order_rotates() -> None:
    orders = [warm.rotation(i, 3) for i in range(3)]
    assert all(sorted(o) == [0, 1, 2] for o in orders)
    assert sorted(o[0] for o in orders) == [0, 1, 2]


def test_a_tiny_warm_run_times_the_bare_resolver_too() -> None:
    world = warm.WarmWorld(doctors=2, days=3, base_doctor_days=1)
    try:
        operations = warm.measure(world, 3)
    finally:
        world.close()
    for o in operations.values():
        assert o["bare_resolver_s"]["n"] == 3
        assert o["bare_resolver_unexpected_status"] == 0
        assert o["overhead_beyond_bare_p50_s"] == o["overhead_p50_s"] - o["bare_resolver_s"]["p50"]


# --- cold start: every function of the Terraform ----------------------------------------------


def test_cold_start_measures_every_handler_module_on_its_terraform_environment() -> None:
    modules = cold_start.handler_modules()
    shorts = {m.rsplit(".", 1)[1] for m in modules}
    assert {"http_api", "booking_worker", "patient_pages", "offers_sweeper"} <= shorts
    assert shorts <= set(cold_start.MODULE_ENV)
    configs = cold_start.configs_for(modules)
    labels = [c.label for c in configs]
    assert labels[:2] == ["python -c 'import boto3'", "python -c pass"]
    assert "http_api (memory)" in labels
    assert {f"{s} (aws)" for s in shorts} <= set(labels)
    worker = next(c for c in configs if c.label == "booking_worker (aws)")
    assert worker.env["CITAS_BACKEND"] == "aws" and worker.env["CITAS_WORKER_COUNTRY"] == "PE"


def test_the_terraform_handlers_are_read_from_lambda_tf(tmp_path: Path) -> None:
    tf = tmp_path / "lambda.tf"
    tf.write_text(
        'a = { handler = "entrypoints.lambda.http_api.handler" }\n'
        'b = { handler     = "entrypoints.lambda.reminders.handler" }\n'
    )
    assert cold_start.terraform_handlers(tf) == ["http_api", "reminders"]
    assert cold_start.terraform_handlers(tmp_path / "missing.tf") == []
    check = cold_start.deployment_check(
        ["entrypoints.lambda.http_api", "entrypoints.lambda.extra"], ["http_api", "reminders"]
    )
    assert check["not_deployed"] == ["extra"]
    assert check["deployed_but_missing"] == ["reminders"]


def test_a_module_without_a_handler_is_no_lambda_function(tmp_path: Path) -> None:
    (tmp_path / "with_handler.py").write_text("handler = make()\n")
    (tmp_path / "typed.py").write_text("handler: object = make()\n")
    (tmp_path / "helpers.py").write_text("def make_handler():\n    pass\n")
    assert cold_start.handler_modules(tmp_path) == [
        "entrypoints.lambda.typed",
        "entrypoints.lambda.with_handler",
    ]


# --- the report: old results and new ones -----------------------------------------------------


def _cost_operation(calls: dict[str, int], wru: float, rru: float) -> dict[str, Any]:
    return {
        "round_trips": sum(calls.values()),
        "calls": calls,
        "items_written": 4,
        "items_checked": 1,
        "wru_table": wru,
        "wru_index": 3.0,
        "wru_condition_checks": 2.0,
        "rru": rru,
        "usd_per_million_ops": 8.0,
    }


def _old_document() -> dict[str, Any]:
    """Families of the shape before `load`, `server` and the bare resolver."""
    world = warm.WarmWorld(doctors=2, days=3, base_doctor_days=1)
    try:
        operations = warm.measure(world, 2, bare=False)
    finally:
        world.close()
    cost_ops = {
        cost.WARM_BOOK: _cost_operation({"TransactWriteItems": 1}, 10.0, 0.0),
        cost.COLD_BOOK: _cost_operation({"GetItem": 1, "TransactWriteItems": 1}, 10.0, 1.0),
    }
    prices = {k: cost.PRICES[k] for k in cost.PRICES}
    return {
        "machine": common.machine(),
        "families": {
            "warm": {
                "calls_per_operation": 2,
                "operations": operations,
                "target": {"what": "x", "max_ratio": 1.5, "worst": 9.0, "met": False},
            },
            "cost": {
                "prices": prices,
                "operations": cost_ops,
                "target": {"what": "y", "one_write_call_per_write": True, "met": True},
            },
        },
    }


def test_the_report_renders_an_old_result_without_the_new_keys() -> None:
    text = report.markdown(_old_document())
    assert "| load (1 min) / noisy |" in text
    assert "| warm | x | worst 9.0x | **no** | - |" in text
    assert "#### Round trips per operation" in text
    assert "| book warm | 1 | TransactWriteItems | 13 (10 + 3) | 0 |" in text
    assert "| book cold | 2 | GetItem + TransactWriteItems | 13 (10 + 3) | 1 |" in text
    assert "| waitlist accept | - | not measured in this result | - | - |" in text
    assert "bare resolver p50" not in text
    assert "Machine load" not in text and "Server:" not in text and "**noisy**" not in text
    # Round trips come right after the targets, before the families.
    assert text.index("#### Targets") < text.index("#### Round trips") < text.index("#### Warm")


def test_the_report_shows_load_server_and_bare_resolver_of_a_new_result() -> None:
    doc = _old_document()
    world = warm.WarmWorld(doctors=2, days=3, base_doctor_days=1)
    try:
        doc["families"]["warm"]["operations"] = warm.measure(world, 2)
    finally:
        world.close()
    noisy = _quiet_load(load_1min_after=1.1, busy_share_during=0.6, own_share_during=0.55)
    noisy |= {"busy_share_before": 0.4, "own_cpu_s": 12.0}
    noisy |= {"noisy": True, "noisy_reasons": load.noisy_reasons(noisy)}
    doc["families"]["warm"] |= {
        "load": noisy,
        "server": {
            "kind": "DynamoDB Local",
            "fresh": True,
            "started_for": "warm",
            "startup_seconds": 2.9,
            "warm_up_seconds": 6.1,
            "stopped_after": True,
        },
    }
    quiet = _quiet_load(load_1min_after=0.5, busy_share_during=0.5, own_share_during=0.47)
    doc["families"]["cost"]["load"] = quiet | {"noisy": False, "noisy_reasons": []}
    text = report.markdown(doc)
    assert "| warm | x | worst 9.0x | **no** | 0.3 → 1.1 / **noisy** |" in text
    assert "| cost | y |" in text and "| 0.3 → 0.5 / no |" in text
    assert "Server: a fresh DynamoDB Local, started for this family (2.9 s start-up" in text
    assert "**noisy**: 40 % of the CPU busy in the 2.0 s before the start" in text
    assert "; not noisy." in text
    assert "**noisy**: other processes were using the machine" in text
    assert "| operation | handler p50 | use case p50 | handler overhead p50" in text
    printed = report.text_table(doc)
    assert "== Targets" in printed and "0.3 → 1.1 / noisy" in printed


def test_the_round_trips_table_names_the_cost_familys_operations() -> None:
    from bench import report_tables

    names = {name for _label, name in report_tables.ROUND_TRIP_OPERATIONS}
    assert {cost.WARM_BOOK, cost.COLD_BOOK, cost.RESCHEDULE} <= names
    assert {"status change (confirm)", "cancel", "waitlist: accept"} <= names
