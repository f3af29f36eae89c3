"""Tables of the results: printed after a run, and bench/results/README-table.md."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import fmt_ms, fmt_us, log


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def _met(target: dict[str, Any] | None) -> str:
    if not target:
        return "-"
    return "yes" if target.get("met") else "**no**"


def _calls(calls: dict[str, int]) -> str:
    return " + ".join(f"{n}x {op}" if n > 1 else op for op, n in sorted(calls.items()))


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
        p = cost["prices"]
        rows = [
            [
                name,
                _calls(o["calls"]),
                f"{o['wru_table']:g} + {o['wru_index']:g}",
                f"{o['rru']:g}",
                f"{o['usd_per_million_ops']:.3f}",
            ]
            for name, o in cost["operations"].items()
        ]
        out.append(
            (
                "AWS cost per operation",
                [
                    f"Counted on DynamoDB Local; request units computed with AWS's formulas from "
                    f"item sizes; priced at {p['region']} {p['mode']} "
                    f"${p['usd_per_million_wru']}/M WRU and ${p['usd_per_million_rru']}/M RRU "
                    f"(as of {p['as_of']}; {p['source']}). One write call per write: "
                    f"{'yes' if cost['target'].get('one_write_call_per_write') else '**no**'}; "
                    f"one round trip per write: {_met(cost['target'])} (the reads before the "
                    "transaction are GetItems).",
                    "",
                    *_table(
                        ["operation", "round trips", "WRU (table + GSI)", "RRU", "US$ / M ops"],
                        rows,
                    ),
                    "",
                    *(f"- {note}" for note in cost.get("notes", [])),
                ],
            )
        )

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
        rows = [
            [
                r["clients"],
                r["bookings_per_s"],
                r["conflicts_per_s"],
                r["busy_503_per_s"],
                r["cancels_per_s"],
                r.get("transaction_conflicts_per_s", "-"),
                fmt_ms(r["attempt_latency_p50_s"]),
                fmt_ms(r["attempt_latency_p99_s"]),
                r["double_bookings"],
                "yes" if r["audit"]["ok"] else "**no**",
            ]
            for r in contention["levels"]
        ]
        out.append(
            (
                "Contention",
                [
                    f"Clients booking into {contention['doctor_slots']} slots of one doctor on "
                    f"DynamoDB Local (and cancelling), then a read-back of every appointment and "
                    f"guard cell. Double bookings: {contention['target']['double_bookings']}, "
                    f"met: {_met(contention['target'])}. Note: {contention.get('note', '')}.",
                    "",
                    *_table(
                        [
                            "clients",
                            "booked/s",
                            "conflicts/s",
                            "503/s",
                            "cancels/s",
                            "TransactionConflict/s",
                            "attempt p50",
                            "attempt p99",
                            "double bookings",
                            "audit clean",
                        ],
                        rows,
                    ),
                ],
            )
        )

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
    return out


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
            o["items_written"],
            f"{o['wru_table']:g} + {o['wru_index']:g}",
            f"{o['rru']:g}",
            f"{o['doctor_guard_bytes_after']} B",
            ", ".join(f"{w['kind']} {w['bytes']} B: {w['wru']:g}" for w in o["written"]),
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
        "started KB of each item:",
        "",
        *_table(
            [
                "operation",
                "round trips",
                "items written",
                "WRU (table + GSI)",
                "RRU",
                "doctor guard after",
                "items written: size, WRU",
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
        return f"{t.get('double_bookings')} double bookings"
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


def markdown(doc: dict[str, Any]) -> str:
    lines = [
        "<!-- generated by `make bench` (bench/report.py); do not edit by hand -->",
        "",
        _machine_line(doc),
        "",
    ]
    targets = []
    for name, family in doc.get("families", {}).items():
        t = family.get("target")
        if t:
            when = str(family.get("machine", {}).get("date", ""))[:16].replace("T", " ")
            when += " (quick)" if family.get("quick") else ""
            targets.append([name, t.get("what", ""), _measured(name, family), _met(t), when])
    if targets:
        lines += [
            "#### Targets",
            "",
            *_table(["family", "target", "measured", "met", "run (UTC)"], targets),
            "",
        ]
    for title, body in sections(doc):
        lines += [f"#### {title}", "", *body, ""]
    return "\n".join(lines)


def text_table(doc: dict[str, Any]) -> str:
    """The printed summary: the same tables, markdown pipes kept (readable as plain text)."""
    out = ["", _machine_line(doc).replace("**", ""), ""]
    for title, body in sections(doc):
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
