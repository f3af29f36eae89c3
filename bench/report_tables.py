"""Parts of the report (bench/report.py) about every family: load, server, round trips,
handler overhead. Each one reads results of an older shape too (keys missing: left out)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# The cost family's operation names (bench/cost.py) shown in the round-trips table, with the
# short label the table gives them.
ROUND_TRIP_OPERATIONS = (
    ("book warm", "book (warm)"),
    ("book cold", "book (cold: first booking of this doctor in this container)"),
    ("reschedule", "reschedule (same length)"),
    ("status change", "status change (confirm)"),
    ("cancel", "cancel"),
    ("waitlist accept", "waitlist: accept"),
)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A markdown table."""
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def calls(counts: dict[str, int]) -> str:
    """`{"GetItem": 1, "Query": 2}` as `GetItem + 2x Query`."""
    return " + ".join(f"{n}x {op}" if n > 1 else op for op, n in sorted(counts.items()))


def _pct(share: float | None) -> str:
    return "?" if share is None else f"{share * 100:.0f} %"


def load_cell(family: dict[str, Any]) -> str:
    """The Targets table's `load (1 min) / noisy` cell: `0.3 → 1.1 / no`."""
    load = family.get("load")
    if not load:
        return "-"
    noisy = "**noisy**" if load.get("noisy") else "no"
    return f"{load.get('load_1min_before')} → {load.get('load_1min_after')} / {noisy}"


def noisy_legend() -> str:
    """What `noisy` in the Targets table means (bench/load.py's thresholds)."""
    from bench import load

    return (
        "Load: the 1-minute load average before → after the family. **noisy**: other "
        f"processes were using the machine: more than {_pct(load.BUSY_BEFORE_MAX)} of the CPU "
        "busy in the idle sample just before the start, a 1-minute load average above "
        f"{load.LOAD_1MIN_MAX:g} at the start beyond what the run's own earlier families "
        f"explain, or other processes using more than {_pct(load.OTHER_DURING_MAX)} of the CPU "
        "during the run (busy - this benchmark's own CPU time, its servers included); each "
        "family's section gives the figures and the reason."
    )


def load_line(load: dict[str, Any]) -> str:
    """One sentence on the machine's load around a family, and whether it was noisy."""
    own = load.get("load_1min_own_estimate_before")
    text = (
        f"Machine load: 1-min load average {load.get('load_1min_before')} → "
        f"{load.get('load_1min_after')}"
        + (f" (this run's earlier families ≈ {own} of it at the start)" if own else "")
        + f"; CPU busy {_pct(load.get('busy_share_before'))} in the "
        f"{load.get('pre_start_sample_s')} s before the start, "
        f"{_pct(load.get('busy_share_during'))} during the run"
    )
    if "other_share_during" in load:
        text += (
            f" (this benchmark {_pct(load.get('own_share_during'))}, "
            f"{load.get('own_cpu_s')} CPU s; other processes ≈ "
            f"{_pct(load['other_share_during'])})"
        )
    if load.get("noisy"):
        return text + "; **noisy**: " + "; ".join(load.get("noisy_reasons", [])) + "."
    return text + "; not noisy."


def server_line(server: dict[str, Any]) -> str:
    """One sentence on the server a family ran on."""
    kind = server.get("kind", "?")
    if kind == "none":
        return f"Server: none ({server.get('why', '')})."
    # bench/ddb.py's server, or one the family starts itself (`citas serve`, a script).
    what = kind if kind == "DynamoDB Local" else f"its own {kind}"
    if server.get("fresh"):
        what = f"a fresh {kind}" if kind == "DynamoDB Local" else f"{what}, fresh"
    if server.get("started_for"):
        what += ", started for this family"
    timings = []
    if server.get("startup_seconds") is not None:
        timings.append(f"{server['startup_seconds']} s start-up")
    if server.get("warm_up_seconds") is not None:
        timings.append(f"{server['warm_up_seconds']} s JVM warm-up")
    if server.get("servers_started", 1) > 1:
        timings.append(f"{server['servers_started']} servers")
    text = f"Server: {what}" + (f" ({', '.join(timings)})" if timings else "")
    if server.get("stopped_after"):
        text += ", stopped after it"
    return text + (f"; {server['why']}." if server.get("why") else ".")


def family_lines(family: dict[str, Any]) -> list[str]:
    """The server and load sentences of a family's section ([] for an older result)."""
    lines = []
    if family.get("server"):
        lines.append(server_line(family["server"]))
    if family.get("load"):
        lines.append(load_line(family["load"]))
    return ["", " ".join(lines)] if lines else []


def deployment_line(cold: dict[str, Any]) -> list[str]:
    """Which functions the cold-start family measured, against Terraform's ([] if older)."""
    check = cold.get("deployment")
    if not check:
        return []
    deployed = check.get("terraform_handlers", [])
    gaps = [
        f"{label}: {', '.join(check[key])}"
        for key, label in (
            ("not_deployed", "modules Terraform does not deploy"),
            ("deployed_but_missing", "Terraform handlers with no module"),
            ("without_terraform_environment", "modules measured without a Terraform environment"),
        )
        if check.get(key)
    ]
    return [
        "",
        f"Every handler module of entrypoints/lambda/ ({len(cold.get('modules', []))}); "
        f"`{check.get('terraform_file')}` deploys {len(deployed)}: {', '.join(deployed)}. "
        f"{cold.get('environment', '')}. "
        + ("; ".join(gaps) or "No module or function unmatched")
        + ".",
    ]


def round_trip_lines(cost: dict[str, Any]) -> list[str]:
    """The compact table of round trips and request units per operation, from the cost family."""
    operations = cost.get("operations", {})
    rows = []
    for label, name in ROUND_TRIP_OPERATIONS:
        o = operations.get(name)
        if o is None:
            rows.append([label, "-", "not measured in this result", "-", "-"])
            continue
        wru_table, wru_index = o.get("wru_table", 0), o.get("wru_index", 0)
        rows.append(
            [
                label,
                o.get("round_trips", "-"),
                calls(o.get("calls", {})),
                f"{wru_table + wru_index:g} ({wru_table:g} + {wru_index:g})",
                f"{o.get('rru', 0):g}",
            ]
        )
    when = str(cost.get("machine", {}).get("date", ""))[:16].replace("T", " ")
    return [
        "Calls to DynamoDB per operation (each one network round trip), counted on DynamoDB "
        "Local by the cost family"
        + (f" ({when} UTC)" if when else "")
        + "; request units from AWS's formulas (details under AWS cost per operation).",
        "",
        *table(["operation", "round trips", "calls", "WRU (table + GSI)", "RRU"], rows),
    ]


def _us(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e6:,.0f} µs"


def handler_overhead_lines(warm: dict[str, Any]) -> list[str]:
    """Handler overhead against a bare Powertools resolver, per operation ([] if not timed)."""
    operations = {n: o for n, o in warm.get("operations", {}).items() if "bare_resolver_s" in o}
    if not operations:
        return []
    rows = [
        [
            name,
            _us(o["handler_s"]["p50"]),
            _us(o["use_case_s"]["p50"]),
            _us(o["overhead_p50_s"]),
            _us(o["bare_resolver_s"]["p50"]),
            _us(o.get("overhead_beyond_bare_p50_s")),
            f"{o.get('event_bytes', '?')} B / {o.get('ping_event_bytes', '?')} B",
        ]
        for name, o in operations.items()
    ]
    return [
        "",
        f"Handler overhead against a bare Powertools resolver, in the same run and loop: "
        f"{warm.get('bare_resolver', 'a bare APIGatewayRestResolver answering a constant')}; "
        f"the order of the three rotates every iteration. The target above is unchanged: "
        f"handler p50 against use case p50.",
        "",
        *table(
            [
                "operation",
                "handler p50",
                "use case p50",
                "handler overhead p50 (handler - use case)",
                "bare resolver p50",
                "overhead beyond the bare resolver",
                "event (handler / bare)",
            ],
            rows,
        ),
    ]
