"""Entry point of the benchmarks: `python -m bench.run [--quick] [--only a,b] [--soak]`.

Writes bench/results/latest.json (every family run so far; `--only` replaces just the
families it runs), one PNG per family, bench/results/README-table.md, and prints a table.
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

FAMILIES = ("cold_start", "warm", "cost", "lean", "scaling", "contention", "http", "soak")
DEFAULT_FAMILIES = tuple(f for f in FAMILIES if f != "soak")


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


def main(argv: list[str] | None = None) -> int:
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
    for family in families:
        log(f"--- {family}{' (quick)' if q.quick else ''}")
        began = time.monotonic()
        try:
            result = _runner(family)(q, results_dir)
        except Exception as error:  # one broken family must not lose the others
            traceback.print_exc()
            result = {"error": f"{type(error).__name__}: {error}"}
            failed.append(family)
        result["quick"] = q.quick
        result["family_seconds"] = round(time.monotonic() - began, 1)
        result["machine"] = document["machine"]
        document["families"][family] = result
        latest.write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")
        log(f"{family} done in {result['family_seconds']} s")
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
