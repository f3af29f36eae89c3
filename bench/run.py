"""Entry point of the benchmarks: `python -m bench.run [--quick] [--only a,b] [--soak]`.

Writes bench/results/latest.json (every family run so far; `--only` replaces just the
families it runs), one PNG per family, bench/results/README-table.md, and prints a table.

Every family that uses DynamoDB Local runs on a fresh server of its own (bench/ddb.py,
stopped after the family), and every result says what it ran on (`server`) and how loaded
the machine was around it (`load`, bench/load.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import RESULTS_DIR, Quick, log, machine
from bench.load import LoadMeter

FAMILIES = ("cold_start", "warm", "cost", "lean", "scaling", "contention", "http", "soak")
DEFAULT_FAMILIES = tuple(f for f in FAMILIES if f != "soak")
# What the families that use no DynamoDB Local of bench/ddb.py run on (a family may return a
# more precise `server` of its own, e.g. with its start-up time).
OWN_SERVERS: dict[str, dict[str, Any]] = {
    "cold_start": {
        "kind": "none",
        "why": "each run is a fresh interpreter importing a handler and building its "
        "container; the AWS endpoints it is given are never contacted",
    },
    "http": {
        "kind": "citas serve (memory backend)",
        "fresh": True,
        "started_for": "http",
        "why": "bench/http_load.py starts its own `citas serve` for each load and stops it",
    },
    "soak": {
        "kind": "scripts/run-aws-local.sh",
        "fresh": True,
        "started_for": "soak",
        "why": "the script starts its own in-memory DynamoDB Local, SQS emulator and "
        "`citas serve --backend aws`, and stops them",
    },
}


def _runner(family: str) -> Callable[[Quick, Path], dict[str, Any]]:
    if family == "cold_start":
        from bench import cold_start

        return cold_start.run
    if family == "warm":
        from bench import warm

        return warm.run
    if family == "cost":
        from bench import cost

        return cost.run
    if family == "lean":
        from bench import lean

        return lean.run
    if family == "scaling":
        from bench import scaling

        return scaling.run
    if family == "contention":
        from bench import contention

        return contention.run
    if family == "http":
        from bench import http_load

        return http_load.run
    if family == "soak":
        from bench import soak

        return soak.run_family
    raise ValueError(family)


def _families(value: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in value.split(",") if part.strip())
    unknown = [n for n in names if n not in FAMILIES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"families are {', '.join(FAMILIES)}; got {value!r}")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, for development (noisy numbers)"
    )
    parser.add_argument(
        "--only", type=_families, default=None, help=f"comma-separated: {', '.join(FAMILIES)}"
    )
    parser.add_argument(
        "--soak",
        action="store_true",
        help="also run the soak on `scripts/run-aws-local.sh`, if that script exists",
    )
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="output directory")
    return parser


def _server_of(family: str, result: dict[str, Any]) -> dict[str, Any]:
    """What `family` ran on: the fresh DynamoDB Local it started (now stopped), or its own."""
    # Only a family that imported bench.ddb can have started a server (and boto3 is not
    # imported here for the others). Stopped now, before the load is read: the JVM's CPU
    # time then counts as the family's own.
    ddb = sys.modules.get("bench.ddb")
    started: dict[str, Any] | None = ddb.end_family(family) if ddb is not None else None
    if started is not None:
        return started
    if "server" in result:
        return dict(result["server"])
    return OWN_SERVERS.get(family, {"kind": "none", "why": "started no DynamoDB Local"})


def run_family(family: str, q: Quick, results_dir: Path, meter: LoadMeter) -> dict[str, Any]:
    """One family, its errors caught: its result with `server`, `load` and timings."""
    log(f"--- {family}{' (quick)' if q.quick else ''}")
    start = meter.before()
    began = time.monotonic()
    try:
        result = _runner(family)(q, results_dir)
    except Exception as error:  # one broken family must not lose the others
        traceback.print_exc()
        result = {"error": f"{type(error).__name__}: {error}"}
    result["server"] = _server_of(family, result)
    result["family_seconds"] = round(time.monotonic() - began, 1)
    result["load"] = meter.after(start)
    result["quick"] = q.quick
    load = result["load"]
    log(
        f"{family} done in {result['family_seconds']} s; load {load['load_1min_before']} -> "
        f"{load['load_1min_after']}"
        + (f"; NOISY: {'; '.join(load['noisy_reasons'])}" if load["noisy"] else "")
    )
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the families asked for, then write latest.json, the PNGs and README-table.md."""
    args = build_parser().parse_args(argv)
    q = Quick(args.quick)
    families = args.only or (DEFAULT_FAMILIES + (("soak",) if args.soak else ()))
    results_dir: Path = args.results
    results_dir.mkdir(parents=True, exist_ok=True)
    latest = results_dir / "latest.json"
    document: dict[str, Any] = {}
    if latest.exists():
        try:
            document = json.loads(latest.read_text(encoding="utf-8"))
        except ValueError:
            document = {}
    document.setdefault("families", {})
    document["machine"] = machine()
    failed = []
    # A shorter idle sample in a quick run: it is taken before every family.
    meter = LoadMeter(sample_seconds=q.pick(2.0, 1.0))
    for family in families:
        result = run_family(family, q, results_dir, meter)
        if "error" in result:
            failed.append(family)
        result["machine"] = document["machine"]
        document["families"][family] = result
        latest.write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")
    if "bench.ddb" in sys.modules:
        sys.modules["bench.ddb"].stop()
    from bench import report

    report.write_all(document, results_dir)
    print(report.text_table(document))
    if failed:
        print(f"bench: failed families: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
