"""Cold start: a fresh interpreter imports a Lambda handler module and builds its container.

Every configuration runs once per round, in a shuffled order, next to the baselines
`python -c "import boto3"` and `python -c pass`, so that a noisy neighbour slows all of them
alike. The wall time of the whole child process is what is compared (interpreter start-up
included, as in a Lambda init); the child also reports its own import and build times.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, Quick, log, ratio, summary

LAMBDA_DIR = REPO_ROOT / "entrypoints" / "lambda"
TARGET_RATIO = 1.3
# Never contacted: clients are built lazily, and nothing here sends a request.
DUMMY_ENDPOINT = "http://127.0.0.1:9"
AWS_ENV = {
    "CITAS_BACKEND": "aws",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "dummy",
    "AWS_SECRET_ACCESS_KEY": "dummy",
    "AWS_ENDPOINT_URL_DYNAMODB": DUMMY_ENDPOINT,
    "AWS_ENDPOINT_URL_SQS": DUMMY_ENDPOINT,
    "AWS_ENDPOINT_URL_SNS": DUMMY_ENDPOINT,
    "CITAS_EVENTS_QUEUE_URL": f"{DUMMY_ENDPOINT}/000000000000/citas-local-events.fifo",
    "CITAS_BOOKING_QUEUE_URLS": (
        f"PE={DUMMY_ENDPOINT}/000000000000/citas-local-booking-requests-PE.fifo,"
        f"CL={DUMMY_ENDPOINT}/000000000000/citas-local-booking-requests-CL.fifo"
    ),
}
# What a deployed function of that module would be configured with, beyond AWS_ENV.
MODULE_ENV = {
    "booking_worker": {"CITAS_WORKER_COUNTRY": "PE"},
    "notifications": {"CITAS_NOTIFIER": "sns"},
}

CHILD = """
import time
began = time.perf_counter()
import importlib, json, sys
handler_module = importlib.import_module({module!r})
imported = time.perf_counter()
handler_module.default_app()
built = time.perf_counter()
print(json.dumps({{"import_s": imported - began, "build_s": built - imported,
                   "boto3_loaded": "boto3" in sys.modules}}))
"""


def handler_modules(lambda_dir: Path = LAMBDA_DIR) -> list[str]:
    """Every Lambda handler module under entrypoints/lambda/, as an importable name."""
    return [
        f"entrypoints.lambda.{path.stem}"
        for path in sorted(lambda_dir.glob("*.py"))
        if not path.stem.startswith("_")
    ]


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CITAS_", "AWS_", "POWERTOOLS_"))
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(extra)
    return env


class Config:
    """One command whose cold start is measured."""

    def __init__(self, label: str, code: str, env: dict[str, str], **meta: Any) -> None:
        self.label = label
        self.code = code
        self.env = _clean_env(env)
        self.meta = meta
        self.wall: list[float] = []
        self.inner: list[dict[str, Any]] = []
        self.error: str | None = None

    def run_once(self) -> None:
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", self.code],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        elapsed = time.perf_counter() - began
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            self.error = lines[-1] if lines else f"exit {done.returncode}"
            return
        self.wall.append(elapsed)
        last = done.stdout.strip().splitlines()[-1:] if done.stdout.strip() else []
        if last and last[0].startswith("{"):
            self.inner.append(json.loads(last[0]))

    def result(self, baseline_median: float | None) -> dict[str, Any]:
        wall = summary(self.wall, (10, 50, 90))
        out: dict[str, Any] = {"label": self.label, **self.meta, "wall_s": wall}
        if self.inner:
            out["import_s"] = summary([i["import_s"] for i in self.inner], (10, 50, 90))
            out["build_s"] = summary([i["build_s"] for i in self.inner], (10, 50, 90))
            out["boto3_loaded"] = any(i["boto3_loaded"] for i in self.inner)
        if baseline_median and self.wall:
            out["ratio_to_boto3"] = ratio(wall["p50"], baseline_median)
        if self.error:
            out["error"] = self.error
        return out


def importtime_top(module: str, top: int = 20) -> dict[str, Any]:
    """`python -X importtime` of `module`: the `top` imports by cumulative time."""
    done = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            f"import importlib; importlib.import_module({module!r})",
        ],
        cwd=REPO_ROOT,
        env=_clean_env({"CITAS_BACKEND": "memory"}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    rows = []
    pattern = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S.*)$")
    for line in done.stderr.splitlines():
        match = pattern.match(line)
        if match:
            self_us, cumulative_us, indent, name = match.groups()
            rows.append(
                {
                    "module": name.strip(),
                    "self_ms": int(self_us) / 1000,
                    "cumulative_ms": int(cumulative_us) / 1000,
                    "depth": (len(indent) - 1) // 2,
                }
            )
    rows.sort(key=lambda r: r["cumulative_ms"], reverse=True)
    top_level = [r for r in rows if r["depth"] == 0]
    return {
        "module": module,
        "imports": len(rows),
        "total_ms": round(sum(r["cumulative_ms"] for r in top_level), 1),
        "top_cumulative": rows[:top],
        "top_level": top_level[:top],
        "raw": done.stderr,
    }


def run(q: Quick, results_dir: Path) -> dict[str, Any]:
    runs = q.pick(21, 5)
    modules = handler_modules()
    baseline = Config("python -c 'import boto3'", "import boto3", {}, kind="baseline")
    floor = Config("python -c pass", "pass", {}, kind="floor")
    configs = [baseline, floor]
    for module in modules:
        short = module.rsplit(".", 1)[1]
        extra = MODULE_ENV.get(short, {})
        # The memory backend is what `citas serve` runs the HTTP handler on; the workers
        # only ever run on AWS.
        backends = ("memory", "aws") if short == "http_api" else ("aws",)
        for backend in backends:
            env = {"CITAS_BACKEND": "memory"} if backend == "memory" else {**AWS_ENV, **extra}
            configs.append(
                Config(
                    f"{short} ({backend})",
                    CHILD.format(module=module),
                    env,
                    kind="handler",
                    module=module,
                    backend=backend,
                )
            )
    log(f"cold start: {len(modules)} handler module(s), {len(configs)} commands x {runs} runs")
    # One untimed round: compiles .pyc files and warms the page cache for everybody.
    for config in configs:
        config.run_once()
        config.wall.clear()
        config.inner.clear()
    rng = random.Random(7)
    for _ in range(runs):
        order = [c for c in configs if c.error is None]
        rng.shuffle(order)
        for config in order:
            config.run_once()
    base = summary(baseline.wall, (10, 50, 90))["p50"] if baseline.wall else None
    rows = [c.result(base) for c in configs]
    http_memory = next(
        (r for r in rows if r.get("module", "").endswith(".http_api") and r["backend"] == "memory"),
        None,
    )
    imports = importtime_top("entrypoints.lambda.http_api")
    (results_dir / "importtime_http_api.txt").write_text(imports.pop("raw"), encoding="utf-8")
    measured = http_memory.get("ratio_to_boto3") if http_memory else None
    return {
        "runs": runs,
        "modules": modules,
        "rows": rows,
        "importtime_http_api": imports,
        "target": {
            "what": "http_api (memory) median wall / `import boto3` median wall",
            "max_ratio": TARGET_RATIO,
            "measured": measured,
            "met": measured is not None and measured <= TARGET_RATIO,
        },
    }
