"""One PNG per family (matplotlib, Agg backend) in bench/results/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.common import log


def _subtitle(doc: dict[str, Any], family: dict[str, Any]) -> str:
    m = doc.get("machine", {})
    quick = " — QUICK RUN (small, noisy)" if family.get("quick") else ""
    return f"{m.get('cpu_model')}, {m.get('cores')} cores, Python {m.get('python')}{quick}"


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cold_start(doc: dict[str, Any], f: dict[str, Any], path: Path) -> None:
    rows = [r for r in f["rows"] if r["wall_s"].get("n")]
    labels = [r["label"].replace("python -c ", "") for r in rows]
    med = [r["wall_s"]["p50"] * 1000 for r in rows]
    low = [m - r["wall_s"]["p10"] * 1000 for m, r in zip(med, rows, strict=True)]
    high = [r["wall_s"]["p90"] * 1000 - m for m, r in zip(med, rows, strict=True)]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 2))
    colors = ["#888" if r.get("kind") != "handler" else "#1f77b4" for r in rows]
    ax.barh(labels, med, xerr=[low, high], color=colors, capsize=3)
    base = next((r for r in rows if r.get("kind") == "baseline"), None)
    if base:
        limit = base["wall_s"]["p50"] * 1000 * f["target"]["max_ratio"]
        ax.axvline(limit, color="red", linestyle="--", label=f"{f['target']['max_ratio']}x boto3")
        ax.legend(loc="lower right")
    ax.invert_yaxis()
    ax.set_xlabel("process wall time, ms (median, p10-p90)")
    ax.set_title(f"Cold start: import + build container\n{_subtitle(doc, f)}", fontsize=10)
    _save(fig, path)


def warm(doc: dict[str, Any], f: dict[str, Any], path: Path) -> None:
    ops = list(f["operations"])
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.38
    xs = range(len(ops))
    for offset, key, label in (
        (-width / 2, "handler_s", "handler"),
        (width / 2, "use_case_s", "use case"),
    ):
        p50 = [f["operations"][o][key]["p50"] * 1e6 for o in ops]
        p99 = [f["operations"][o][key]["p99"] * 1e6 for o in ops]
        bars = ax.bar([x + offset for x in xs], p50, width, label=f"{label} p50")
        ax.scatter(
            [x + offset for x in xs],
            p99,
            marker="_",
            s=300,
            color=bars[0].get_facecolor(),
            label=f"{label} p99",
        )
    for x, o in zip(xs, ops, strict=True):
        ax.annotate(
            f"{f['operations'][o]['ratio_p50']:.1f}x",
            (x, 1),
            ha="center",
            fontsize=8,
            xycoords=("data", "axes fraction"),
            va="top",
        )
    ax.set_xticks(list(xs), ops)
    ax.set_yscale("log")
    ax.set_ylabel("µs per call (log)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set_title(f"Warm latency in process (memory backend)\n{_subtitle(doc, f)}", fontsize=10)
    _save(fig, path)


def cost(doc: dict[str, Any], f: dict[str, Any], path: Path) -> None:
    ops = list(f["operations"])
    usd = [f["operations"][o]["usd_per_million_ops"] for o in ops]
    fig, ax = plt.subplots(figsize=(9, 0.4 * len(ops) + 2))
    ax.barh(ops, usd, color="#2ca02c")
    for y, (o, v) in enumerate(zip(ops, usd, strict=True)):
        trips = f["operations"][o]["round_trips"]
        ax.annotate(
            f" ${v:.3f}  ({trips} round trip{'s' if trips != 1 else ''})",
            (v, y),
            va="center",
            fontsize=8,
        )
    ax.invert_yaxis()
    ax.set_xlabel("US$ per million operations (us-east-1 on-demand, WRU + RRU only)")
    ax.set_xlim(0, max(usd) * 1.45)
    ax.set_title(f"DynamoDB cost per operation\n{_subtitle(doc, f)}", fontsize=10)
    _save(fig, path)


def scaling(doc: dict[str, Any], f: dict[str, Any], path: Path) -> None:
    sizes = [s["appointments"] for s in f["steps"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("doctor_day", "doctor-day"), ("country_status_page", "country page")):
        left.plot(sizes, [s[key]["items_read_median"] for s in f["steps"]], "o-", label=label)
        right.plot(
            sizes, [s[key]["latency_s"]["p50"] * 1000 for s in f["steps"]], "o-", label=label
        )
    for ax in (left, right):
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
        ax.set_xlabel("appointments in the table")
        ax.legend(fontsize=8)
    left.set_ylabel("items read per query (median)")
    left.set_ylim(bottom=0)
    right.set_ylabel("latency p50, ms (DynamoDB Local)")
    right.set_ylim(bottom=0)
    fig.suptitle(f"Scaling of list queries\n{_subtitle(doc, f)}", fontsize=10)
    _save(fig, path)


def contention(doc: dict[str, Any], f: dict[str, Any], path: Path) -> None:
    levels = f["levels"]
    clients = [r["clients"] for r in levels]
    check = f.get("schedule_check")
    if check:
        fig, (ax, right) = plt.subplots(1, 2, figsize=(12, 4))
    else:
        fig, ax = plt.subplots(figsize=(8, 4))
    for key, label in (
        ("bookings_per_s", "booked/s"),
        ("conflicts_per_s", "conflicts/s"),
        ("busy_503_per_s", "503/s"),
        ("cancels_per_s", "cancels/s"),
    ):
        ax.plot(clients, [r[key] for r in levels], "o-", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(clients, [str(c) for c in clients])
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel("per second")
    doubles = sum(r["double_bookings"] for r in levels)
    ax.set_title(f"10 slots of one day: double bookings = {doubles}", fontsize=10)
    ax.legend(fontsize=8)
    if check:
        for workload, color in (("shared_day", "#1f77b4"), ("own_days", "#d62728")):
            runs = check["runs"][workload]
            for variant, style in (("with_check", "o-"), ("without_check", "s--")):
                rows = runs[variant]
                right.plot(
                    [r["clients"] for r in rows],
                    [r["bookings_per_s"] for r in rows],
                    style,
                    color=color,
                    label=f"{workload}, {variant.replace('_', ' ')}",
                )
        ticks = check["levels"]
        right.set_xscale("log", base=2)
        right.set_xticks(ticks, [str(c) for c in ticks])
        right.set_xlabel("concurrent clients")
        right.set_ylabel("booked/s")
        right.set_ylim(bottom=0)
        right.set_title("schedule-version ConditionCheck: with vs without", fontsize=10)
        right.legend(fontsize=8)
    fig.suptitle(f"Contention on DynamoDB Local\n{_subtitle(doc, f)}", fontsize=10)
    _save(fig, path)


def http(doc: dict[str, Any], f: dict[str, Any], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 4))
    names = list(f["by_operation"])
    qs = ("p50", "p95", "p99")
    width = 0.25
    for i, q in enumerate(qs):
        ax.bar(
            [x + (i - 1) * width for x in range(len(names))],
            [f["by_operation"][n]["latency_s"][q] * 1000 for n in names],
            width,
            label=q,
        )
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("ms")
    ax.legend(fontsize=8)
    ax.set_title(
        f"citas serve: {f['requests_per_s']} req/s with {f['client_threads']} clients\n"
        f"{_subtitle(doc, f)}",
        fontsize=10,
    )
    _save(fig, path)


def soak(doc: dict[str, Any], f: dict[str, Any], path: Path) -> None:
    if not f.get("run") or "latency_s" not in f:
        return
    names = list(f["latency_s"])
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar(names, [f["latency_s"][n]["p50"] * 1000 for n in names], label="p50")
    ax.scatter(
        names,
        [f["latency_s"][n]["p99"] * 1000 for n in names],
        marker="_",
        s=300,
        color="black",
        label="p99",
    )
    ax.set_ylabel("ms")
    ax.tick_params(axis="x", labelrotation=30)
    ax.legend(fontsize=8)
    v = f["audit"]["violations"]
    ax.set_title(
        f"Soak: {f['requests']} requests, violations {sum(v.values())}\n{_subtitle(doc, f)}",
        fontsize=10,
    )
    _save(fig, path)


PLOTS = {
    "cold_start": cold_start,
    "warm": warm,
    "cost": cost,
    "scaling": scaling,
    "contention": contention,
    "http": http,
    "soak": soak,
}


def write_all(doc: dict[str, Any], results_dir: Path) -> None:
    for name, family in doc.get("families", {}).items():
        if "error" in family or name not in PLOTS:
            continue
        try:
            PLOTS[name](doc, family, results_dir / f"{name}.png")
        except Exception as error:  # a plot must never lose the numbers
            log(f"plot {name} failed: {type(error).__name__}: {error}")
