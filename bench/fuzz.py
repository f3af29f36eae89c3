"""`make fuzz`: schemathesis against api/openapi.yaml and a `citas serve` on a free port.

The same `st run` invocation as tests/e2e/test_schemathesis.py, with a larger budget and
every phase (examples, coverage, fuzzing, stateful). The output goes to
bench/results/fuzz-latest.txt and a summary to bench/results/fuzz.json; the exit status is
schemathesis' own (0: no failure, no server error).

    python -m bench.fuzz [--max-examples 200] [--seed 1] [--workers 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

from bench.common import REPO_ROOT, RESULTS_DIR, log
from bench.server import Server

OPENAPI = REPO_ROOT / "api" / "openapi.yaml"
ST = Path(sys.executable).parent / "st"
# As tests/e2e/test_schemathesis.py, which says why the other built-in checks do not apply.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "ignored_auth",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__)
    parser.add_argument("--max-examples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=None, help="default: a new one each run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    parser.add_argument("--timeout", type=float, default=3600.0)
    args = parser.parse_args(argv)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    server = Server.start(())  # with the demo doctors the document's examples name
    command = [
        str(ST),
        "run",
        str(OPENAPI),
        "--url",
        server.base_url,
        "--header",
        f"x-api-key: {server.api_key}",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        args.phases,
        "--max-examples",
        str(args.max_examples),
        "--workers",
        str(args.workers),
        "--generation-database",
        "none",
        "--no-color",
    ]
    if args.seed is not None:
        command += ["--seed", str(args.seed)]
    log(f"fuzz: {' '.join(command)}")
    try:
        done = subprocess.run(
            command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=args.timeout
        )
    finally:
        exit_code = server.stop()
        # The local server's access log: one JSON line per request on stderr.
        server_errors = len(re.findall(r'"status": 5\d\d', server.stderr()))
        server.close()
    output = done.stdout + ("\n" + done.stderr if done.stderr else "")
    (RESULTS_DIR / "fuzz-latest.txt").write_text(output, encoding="utf-8")
    seed = re.search(r"--seed[ =](\d+)|Seed:\s*(\d+)", output)
    summary = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": [*command[:4], "<url>", *command[5:]],
        "max_examples": args.max_examples,
        "phases": args.phases,
        "st_exit_code": done.returncode,
        "server_exit_code": exit_code,
        "server_5xx_access_lines": server_errors,
        "seed": next((g for g in seed.groups() if g), None) if seed else args.seed,
        "tail": output.strip().splitlines()[-15:],
        "ok": done.returncode == 0 and server_errors == 0,
    }
    (RESULTS_DIR / "fuzz.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print("\n".join(summary["tail"]))
    print(
        f"fuzz: schemathesis exit {done.returncode}, server 5xx logged: {server_errors} "
        f"-> {'OK' if summary['ok'] else 'FAILED'} (bench/results/fuzz-latest.txt)"
    )
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
