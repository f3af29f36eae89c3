"""Tables of the results: printed after a run, and bench/results/README-table.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.common import fmt_ms, fmt_us, log
from bench.report_tables import calls as _calls
from bench.report_tables import (
    deployment_line,
    family_lines,
    handler_overhead_lines,
    load_cell,
    noisy_legend,
    round_trip_lines,
)
from bench.report_tables import table as _table

# Each family's section title, to add what it ran on and the machine's load to it.
TITLES = {
    "Cold start": "cold_start",
    "Warm latency": "warm",
    "AWS cost per operation": "cost",
    "Lean booking": "lean",
    "Scaling": "scaling",
    "Contention": "contention",
    "Local HTTP load": "http",
    "Soak": "soak",
}


def _met(target: dict[str, Any] | None) -> str:
    if not target:
        return "-"
    return "yes" if target.get("met") else "**no**"


def sections(doc: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(title, markdown lines) for each family present."""
    families = doc.get("families", {})
    out: list[tuple[str, list[str]]] = []

    cold = families.get("cold_start")
    if cold and "rows" in cold:
        rows = []
        for r in cold["rows"]:
            w = r["wall_s"]
            if r.get("error"):
                rows.append([r["label"], "failed", "", "", "", r["error"][:60]])
                continue
            inner = ""
            if "import_s" in r:
                inner = f"{fmt_ms(r['import_s']['p50'])} + {fmt_ms(r['build_s']['p50'])}"
            rows.append(
                [
                    r["label"],
                    fmt_ms(w["p50"]),
                    f"{fmt_ms(w['p10'])} - {fmt_ms(w['p90'])}",
                    r.get("ratio_to_boto3", "") if r.get("kind") != "baseline" else "1.0",
                    inner,
                    "yes" if r.get("boto3_loaded") else ("no" if "boto3_loaded" in r else ""),
                ]
            )
        lines = [
            f"Fresh interpreter, import the handler module and build its container; "
            f"{cold['runs']} interleaved runs each. Target: http_api (memory) ≤ "
            f"{cold['target']['max_ratio']}x `import boto3` — measured "
            f"{cold['target']['measured']}x, met: {_met(cold['target'])}.",
            "",
            *_table(
                [
                    "command",
                    "median",
                    "p10 - p90",
                    "x boto3",
                    "import + build (in process)",
                    "boto3 loaded",
                ],
                rows,
            ),
        ]
        lines += deployment_line(cold)
        top = cold.get("importtime_http_api", {}).get("top_level", [])[:8]
        if top:
            lines += [
                "",
                "Slowest top-level imports of `entrypoints.lambda.http_api` (`-X importtime`, "
                "cumulative): "
                + ", ".join(f"`{t['module']}` {t['cumulative_ms']:.0f} ms" for t in top)
                + ".",
            ]
        out.append(("Cold start", lines))

    warm = families.get("warm")
    if warm and "operations" in warm:
        rows = []
        for name, o in warm["operations"].items():
            h, u = o["handler_s"], o["use_case_s"]
            rows.append(
                [
                    name,
                    f"{fmt_us(h['p50'])} / {fmt_us(h['p95'])} / {fmt_us(h['p99'])}",
                    f"{fmt_us(u['p50'])} / {fmt_us(u['p95'])} / {fmt_us(u['p99'])}",
                    o["ratio_p50"],
                    fmt_us(o["overhead_p50_s"]),
                ]
            )
        lines = [
            f"In process, memory backend, fixed clock, {warm['calls_per_operation']} calls per "
            f"operation and path. Target: handler p50 ≤ {warm['target']['max_ratio']}x use "
            f"case p50 — worst {warm['target']['worst']}x, met: {_met(warm['target'])}.",
            "",
            *_table(
                [
                    "operation",
                    "handler p50 / p95 / p99",
                    "use case p50 / p95 / p99",
                    "ratio p50",
                    "overhead p50",
                ],
                rows,
            ),
            *handler_overhead_lines(warm),
        ]
        ddb_ops = warm.get("dynamodb_local", {}).get("operations")
        if ddb_ops:
            lines += ["", "The same through the AWS adapters on DynamoDB Local:", ""]
            lines += _table(
                ["operation", "handler p50 / p99", "use case p50 / p99", "ratio p50"],
                [
                    [
                        n,
                        f"{fmt_us(o['handler_s']['p50'])} / {fmt_us(o['handler_s']['p99'])}",
                        f"{fmt_us(o['use_case_s']['p50'])} / {fmt_us(o['use_case_s']['p99'])}",
                        o["ratio_p50"],
                    ]
                    for n, o in ddb_ops.items()
                ],
            )
        layers = warm.get("profile", {}).get("layers_us_per_request")
        if layers:
            lines += [
                "",
                f"Where the handler's time goes (cProfile of {warm['profile']['what']}, "
                "µs per request, profiler overhead included): "
                + "; ".join(f"{k} {v}" for k, v in layers.items())
                + ".",
            ]
        top = warm.get("profile", {}).get("top_tottime", [])[:10]
        if top:
            lines += ["", "Top 10 functions by own time (cProfile):", ""]
            lines += _table(
                ["function", "µs / request"],
                [[f"`{t['function']}`", t["per_request_us"]] for t in top],
            )
        out.append(("Warm latency", lines))

    cost = families.get("cost")
    if cost and "operations" in cost:
        out.append(("AWS cost per operation", _cost_lines(cost)))

    lean = families.get("lean")
    if lean and "operations" in lean:
        out.append(("Lean booking", _lean_lines(lean)))

    scaling = families.get("scaling")
    if scaling and "steps" in scaling:
        rows = [
            [
                f"{s['appointments']:,}",
                f"{s['load_seconds']} s",
                f"{s['doctor_day']['items_read_median']:g}",
                fmt_ms(s["doctor_day"]["latency_s"]["p50"]),
                f"{s['country_status_page']['items_read_median']:g}",
                fmt_ms(s["country_status_page"]["latency_s"]["p50"]),
            ]
            for s in scaling["steps"]
        ]
        t = scaling["target"]
        out.append(
            (
                "Scaling",
                [
                    f"DynamoDB Local, items read per list query as the table grows. Target: "
                    f"items read at the largest / smallest size ≤ {t['max_ratio']} — "
                    f"{t['items_read_ratio']}, met: {_met(t)}. Latency ratio: "
                    f"{t['latency_p50_ratio']} (DynamoDB Local's engine, not AWS's). "
                    f"{scaling.get('note', '')}.",
                    "",
                    *_table(
                        [
                            "appointments",
                            "load (added part)",
                            "doctor-day items read",
                            "p50",
                            "country page items read",
                            "p50",
                        ],
                        rows,
                    ),
                ],
            )
        )

    contention = families.get("contention")
    if contention and "levels" in contention:
        out.append(("Contention", _contention_lines(contention)))

    http = families.get("http")
    if http and "requests" in http:
        rows = [
            [
                name,
                o["requests"],
                ", ".join(f"{k}: {v}" for k, v in o["statuses"].items()),
                f"{fmt_ms(o['latency_s']['p50'])} / {fmt_ms(o['latency_s']['p95'])} / "
                f"{fmt_ms(o['latency_s']['p99'])}",
            ]
            for name, o in http["by_operation"].items()
        ]
        lat = http["latency_s"]
        lines = [
            f"`citas serve` (memory backend), {http['client_threads']} keep-alive client "
            f"threads for {http['seconds']} s: **{http['requests_per_s']} requests/s**, "
            f"p50 {fmt_ms(lat['p50'])}, p95 {fmt_ms(lat['p95'])}, p99 {fmt_ms(lat['p99'])}; "
            f"{http['conflicts_409']} expected 409s, {http['unexpected_statuses']} unexpected "
            f"statuses (met: {_met(http['target'])}).",
            "",
            *_table(["request", "count", "statuses", "p50 / p95 / p99"], rows),
        ]
        nodelay = http.get("what_if_tcp_nodelay")
        if nodelay and "requests_per_s" in nodelay:
            lines += [
                "",
                f"What if the server set TCP_NODELAY (patched in the benchmark only): "
                f"{nodelay['requests_per_s']} requests/s, "
                f"p50 {fmt_ms(nodelay['latency_s']['p50'])}, "
                f"p99 {fmt_ms(nodelay['latency_s']['p99'])}.",
            ]
        out.append(("Local HTTP load", lines))

    soak = families.get("soak")
    if soak:
        if not soak.get("run"):
            out.append(("Soak", [f"Not run: {soak.get('reason', soak.get('error', '?'))}."]))
        elif "audit" in soak:
            v = soak["audit"]["violations"]
            out.append(
                (
                    "Soak",
                    [
                        f"{soak['seconds']} s of mixed traffic on `{soak['stack']}`: "
                        f"{soak['requests']} requests ({soak['requests_per_s']}/s), "
                        f"{soak['unexpected_statuses']} unexpected statuses, "
                        f"{soak['busy_503']} 503s; audit of {soak['audit']['appointments']} "
                        f"appointments and {soak['audit']['cells']} cells: "
                        + ", ".join(f"{k} {n}" for k, n in v.items())
                        + f" (met: {_met(soak.get('target'))}).",
                    ],
                )
            )
        else:
            out.append(("Soak", [f"Failed: {soak.get('error')}"]))
    for name, family in families.items():
        if "error" in family and name != "soak":
            out.append((f"{name}: failed", [f"`{family['error']}`"]))
    for title, body in out:
        body += family_lines(families.get(TITLES.get(title, title.removesuffix(": failed")), {}))
    return out


def _cost_lines(cost: dict[str, Any]) -> list[str]:
    """The cost family: round trips and request units per operation, warm and cold booking."""
    p, t = cost["prices"], cost["target"]
    rows = [
        [
            name,
            f"{o['round_trips']} ({_calls(o['calls'])})",
            f"{o.get('items_written', '-')} + {o.get('items_checked', 0)}",
            f"{o['wru_table']:g} + {o['wru_index']:g}",
            f"{o.get('wru_condition_checks', 0):g}",
            f"{o['rru']:g}",
            f"{o['usd_per_million_ops']:.3f}",
        ]
        for name, o in cost["operations"].items()
    ]
    lines = [
        f"Counted on DynamoDB Local; request units computed with AWS's formulas from "
        f"item sizes; priced at {p['region']} {p['mode']} "
        f"${p['usd_per_million_wru']}/M WRU and ${p['usd_per_million_rru']}/M RRU "
        f"(as of {p['as_of']}; {p['source']})."
    ]
    if "warm_book_round_trips" in t:
        lines[0] += (
            f" Round trips per booking: **warm {t['warm_book_round_trips']}** (target 1), "
            f"**cold {t['cold_book_round_trips']}** (target 2); reschedule "
            f"{t['reschedule_round_trips']} (target ≤ 2). One TransactWriteItems per write: "
            f"{'yes' if t.get('one_write_call_per_write') else '**no**'}; met: {_met(t)}. "
            f"{t.get('reading', '')}."
        )
    else:  # a result of the shape before warm and cold bookings were told apart
        lines[0] += (
            f" One write call per write: "
            f"{'yes' if t.get('one_write_call_per_write') else '**no**'}; "
            f"one round trip per write: {_met(t)}."
        )
    lines += [
        "",
        *_table(
            [
                "operation",
                "round trips",
                "items written + checked",
                "WRU (table + GSI)",
                "of which ConditionChecks",
                "RRU",
                "US$ / M ops",
            ],
            rows,
        ),
    ]
    profile = cost.get("doctor_profile_bytes")
    if profile:
        lines += [
            "",
            f"The doctor's profile item (what every booking's ConditionCheck names): "
            f"{profile['without_time_off']} B, {profile['with_one_block']} B with one block of "
            f"time off (+{profile['one_block']} B a block); a check costs 2 WRU up to "
            f"{profile['write_unit_bytes']} B.",
        ]
    lines += ["", *(f"- {note}" for note in cost.get("notes", []))]
    return lines


def _pair(cell: dict[str, Any], fmt: Any = str) -> str:
    """`with / without` of one figure of the schedule-check comparison."""
    return " / ".join(
        "-" if cell.get(v) is None else fmt(cell[v]) for v in ("with_check", "without_check")
    )


def _contention_lines(contention: dict[str, Any]) -> list[str]:
    """The contention family: the main workload's levels, then the schedule check's cost."""

    def load(r: dict[str, Any]) -> str:
        before, after = r.get("load_average_before"), r.get("load_average_after")
        return f"{before[0]} → {after[0]}" if before and after else "-"

    rows = [
        [
            r["clients"],
            r["bookings_per_s"],
            r["conflicts_per_s"],
            r["busy_503_per_s"],
            r["cancels_per_s"],
            r.get("transaction_conflicts_per_s", "-"),
            r.get("conflicted_share", "-"),
            fmt_ms(r["attempt_latency_p50_s"]),
            fmt_ms(r["attempt_latency_p99_s"]),
            r["double_bookings"],
            "yes" if r["audit"]["ok"] else "**no**",
            load(r),
        ]
        for r in contention["levels"]
    ]
    t = contention["target"]
    lines = [
        f"Clients booking into {contention['doctor_slots']} slots of one doctor on "
        f"DynamoDB Local (and cancelling), "
        f"{contention.get('seconds_per_level', '?')} s per level, then a read-back of every "
        f"appointment and guard cell. Double bookings: {t['double_bookings']}, "
        f"met: {_met(t)}. Note: {contention.get('note', '')}.",
        "",
        *_table(
            [
                "clients",
                "booked/s",
                "conflicts/s",
                "503/s",
                "cancels/s",
                "TransactionConflict/s",
                "conflicted share",
                "attempt p50",
                "attempt p99",
                "double bookings",
                "audit clean",
                "load 1 min (before → after)",
            ],
            rows,
        ),
    ]
    check = contention.get("schedule_check")
    if not check:
        return lines
    lines += [
        "",
        f"What the schedule-version ConditionCheck costs under contention: each cell is "
        f"**with / without** the check, {check['seconds_per_level']} s per level, both "
        f"variants in the same run, one after the other. With: "
        f"{check['variants']['with_check']}. Without: {check['variants']['without_check']}.",
    ]
    for workload, levels in check["side_by_side"].items():
        runs = check["runs"][workload]
        rows = []
        for i, r in enumerate(levels):
            ratios = r["ratio_with_to_without"]
            loads = " / ".join(load(runs[v][i]) for v in ("with_check", "without_check"))
            rows.append(
                [
                    r["clients"],
                    _pair(r["bookings_per_s"]),
                    ratios.get("bookings_per_s", "-"),
                    _pair(r["conflicted_share"]),
                    _pair(r["busy_503_per_s"]),
                    _pair(r["p50_s"], fmt_ms),
                    _pair(r["p99_s"], fmt_ms),
                    ratios.get("p99_s", "-"),
                    _pair(r["double_bookings"]),
                    _pair(r["audit_ok"], lambda ok: "yes" if ok else "**no**"),
                    loads,
                ]
            )
        lines += [
            "",
            f"`{workload}`: {check['what'][workload]}.",
            "",
            *_table(
                [
                    "clients",
                    "booked/s",
                    "x booked/s",
                    "TransactionConflict share",
                    "503/s",
                    "attempt p50",
                    "attempt p99",
                    "x p99",
                    "double bookings",
                    "audit clean",
                    "load 1 min",
                ],
                rows,
            ),
        ]
    return lines


def _counts(counts: dict[str, int]) -> str:
    """`{"2": 400}` as `2`; several values as `2 (399), 3 (1)`."""
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{k} ({v})" for k, v in counts.items()) or "-"


def _lean_lines(lean: dict[str, Any]) -> list[str]:
    """The lean family: latency against the floor, then request units per write."""
    t = lean["target"]
    rows = []
    for name, o in lean["operations"].items():
        s, r = o["latency_s"], o["ratio_to_floor"]
        rows.append(
            [
                name,
                f"{fmt_ms(s['p50'])} / {fmt_ms(s['p95'])}",
                f"{r['p50']} / {r['p95']}",
                ", ".join(str(p["ratio_p50"]) for p in o["per_round"]),
                _counts(o["round_trips"]),
                _counts(o["items_per_transaction"]) if o["items_per_transaction"] else "-",
                o["unexpected"],
            ]
        )
    units = lean["request_units"]["operations"]
    unit_rows = [
        [
            name,
            _calls(o["calls"]),
            f"{o['items_written']} + {o.get('items_checked', 0)}",
            f"{o['wru_table']:g} + {o['wru_index']:g}",
            f"{o['rru']:g}",
            f"{o['doctor_guard_bytes_after']} B",
            ", ".join(
                f"{w['kind']}{' (check)' if w.get('action') == 'ConditionCheck' else ''} "
                f"{w['bytes']} B: {w['wru']:g}"
                for w in o["written"]
            ),
        ]
        for name, o in units.items()
    ]
    return [
        f"DynamoDB Local, {lean['calls_per_operation']} calls per operation in "
        f"{lean['rounds']} round(s), interleaved (the order rotates every iteration), one "
        f"client, one table. The floor is two conditional PutItems (a slot lock, then an "
        f"appointment item of citas's size). Target: book p50 ≤ {t['max_ratio']}x the "
        f"floor's — {t['book_p50_ratio']}x; 30-minute booking ≤ {t['max_wru_table']} WRU on "
        f"the table — {t['book_wru_table']:g}; unexpected outcomes {t['unexpected_outcomes']}; "
        f"met: {_met(t)}.",
        "",
        *_table(
            [
                "operation",
                "p50 / p95",
                "x floor p50 / p95",
                "x floor p50 per round",
                "round trips",
                "items per transaction",
                "unexpected",
            ],
            rows,
        ),
        "",
        "Request units from item sizes (AWS's formulas, bench/cost.py; a refused transaction "
        "charged as a write of the items it named); transactional writes cost 2 WRU per "
        "started KB of each item, a ConditionCheck (the doctor's schedule version) as a "
        "transactional write of the item it checks:",
        "",
        *_table(
            [
                "operation",
                "round trips",
                "items written + checked",
                "WRU (table + GSI)",
                "RRU",
                "doctor guard after",
                "items: size, WRU",
            ],
            unit_rows,
        ),
    ]


def _measured(name: str, family: dict[str, Any]) -> str:
    t = family["target"]
    if name == "cold_start":
        return f"{t.get('measured')}x"
    if name == "warm":
        return f"worst {t.get('worst')}x"
    if name == "cost":
        if "warm_book_round_trips" in t:
            return (
                f"book warm {t['warm_book_round_trips']} / cold {t['cold_book_round_trips']}, "
                f"reschedule {t['reschedule_round_trips']} round trips"
                + "; 1 TransactWriteItems per write"
                * bool(t.get("one_write_call_per_write"))
            )
        ops = family["operations"]
        return ", ".join(
            f"{w.split(' ')[0]} {ops[w]['round_trips']}" for w in t.get("writes", {}) if w in ops
        ) + " round trips; 1 write call each" * bool(t.get("one_write_call_per_write"))
    if name == "lean":
        return (
            f"book p50 {t.get('book_p50_ratio')}x the floor's, "
            f"{t.get('book_wru_table')} WRU on the table"
        )
    if name == "scaling":
        return ", ".join(f"{k} {v}" for k, v in t.get("items_read_ratio", {}).items())
    if name == "contention":
        measured = f"{t.get('double_bookings')} double bookings"
        own = family.get("schedule_check", {}).get("side_by_side", {}).get("own_days")
        if own:
            last = own[-1]
            measured += (
                f"; version check at {last['clients']} clients on own days: booked/s x"
                f"{last['ratio_with_to_without'].get('bookings_per_s')} of without"
            )
        return measured
    if name == "http":
        return (
            f"{family.get('unexpected_statuses')} unexpected, {family.get('conflicts_409')} x 409"
        )
    if name == "soak" and "audit" in family:
        bad = sum(family["audit"]["violations"].values())
        return f"{bad} violations, {family.get('unexpected_statuses')} unexpected"
    return ""


def _machine_line(doc: dict[str, Any]) -> str:
    m = doc.get("machine", {})
    quick = any(f.get("quick") for f in doc.get("families", {}).values())
    note = (
        " **Quick run: small sizes, noisy machine — not the published figures.**" if quick else ""
    )
    load = m.get("load_average_at_start")
    return (
        f"Measured {m.get('date')} on {m.get('platform')}, {m.get('cpu_model')}, "
        f"{m.get('cores')} cores, Python {m.get('python')}"
        + (f", load average at start {load}" if load else "")
        + f".{note}"
    )


def _head(doc: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """The sections before the families': the targets, then round trips per operation."""
    families = doc.get("families", {})
    targets = []
    for name, family in families.items():
        t = family.get("target")
        if t:
            when = str(family.get("machine", {}).get("date", ""))[:16].replace("T", " ")
            when += " (quick)" if family.get("quick") else ""
            targets.append(
                [name, t.get("what", ""), _measured(name, family), _met(t), load_cell(family), when]
            )
    out = []
    if targets:
        headers = ["family", "target", "measured", "met", "load (1 min) / noisy", "run (UTC)"]
        legend = ["", noisy_legend()] if any(f.get("load") for f in families.values()) else []
        out.append(("Targets", [*_table(headers, targets), *legend]))
    cost = families.get("cost")
    if cost and "operations" in cost:
        out.append(("Round trips per operation", round_trip_lines(cost)))
    return out


def markdown(doc: dict[str, Any]) -> str:
    """README-table.md: the machine, the targets, round trips, then each family."""
    lines = [
        "<!-- generated by `make bench` (bench/report.py); do not edit by hand -->",
        "",
        _machine_line(doc),
        "",
    ]
    for title, body in _head(doc) + sections(doc):
        lines += [f"#### {title}", "", *body, ""]
    return "\n".join(lines)


def text_table(doc: dict[str, Any]) -> str:
    """The printed summary: the same tables, markdown pipes kept (readable as plain text)."""
    out = ["", _machine_line(doc).replace("**", ""), ""]
    for title, body in _head(doc) + sections(doc):
        out += [f"== {title}", *[line.replace("**", "") for line in body], ""]
    return "\n".join(out)


def write_all(doc: dict[str, Any], results_dir: Path) -> None:
    (results_dir / "README-table.md").write_text(markdown(doc), encoding="utf-8")
    try:
        from bench import plots
    except ImportError as error:  # matplotlib is installed by `make bench`
        log(f"no plots: {error}")
        return
    plots.write_all(doc, results_dir)
