"""Cold start: a fresh interpreter imports a Lambda handler module and builds its container.

Every module of entrypoints/lambda/ with a `handler` (each one a function of
infra/terraform/lambda.tf; `deployment_check` says if the two lists ever part) is measured on
the aws backend with the environment Terraform gives its function, and http_api also on the
memory backend (the target). Every configuration runs once per round, in a shuffled order,
next to the baselines `python -c "import boto3"` and `python -c pass`, so that a noisy
neighbour slows all of them alike. The wall time of the whole child process is what is
compared (interpreter start-up included, as in a Lambda init); the child also reports its
own import and build times.
"""

from __future__ import annotations

import ast
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
TERRAFORM_LAMBDA = REPO_ROOT / "infra" / "terraform" / "lambda.tf"
TARGET_RATIO = 1.3
# Never contacted: clients are built lazily, and nothing here sends a request.
DUMMY_ENDPOINT = "http://127.0.0.1:9"
# The AWS side of a function's environment: region, credentials, and every endpoint (the
# service-specific ones and AWS_ENDPOINT_URL for the rest: SSM, End User Messaging, ...)
# pointing nowhere.
AWS_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "dummy",
    "AWS_SECRET_ACCESS_KEY": "dummy",
    "AWS_ENDPOINT_URL": DUMMY_ENDPOINT,
    "AWS_ENDPOINT_URL_DYNAMODB": DUMMY_ENDPOINT,
    "AWS_ENDPOINT_URL_SQS": DUMMY_ENDPOINT,
    "AWS_ENDPOINT_URL_SNS": DUMMY_ENDPOINT,
    "AWS_ENDPOINT_URL_SSM": DUMMY_ENDPOINT,
}
# What Terraform gives every function (infra/terraform/lambda.tf, local.function_environment),
# with stand-in values of the same form.
FUNCTION_ENV = {
    "CITAS_BACKEND": "aws",
    "CITAS_COUNTRIES": "PE=America/Lima,CL=America/Santiago",
    "CITAS_TABLE_NAME": "citas-dev",
    "CITAS_CLINICS_PARAMETER_PATH": "/citas/dev/clinics",
    "POWERTOOLS_SERVICE_NAME": "citas",
    "POWERTOOLS_METRICS_NAMESPACE": "citas",
}
_QUEUE = f"{DUMMY_ENDPOINT}/000000000000/citas-dev"
LINK_KEYS_ENV = {"CITAS_LINK_KEYS_PARAMETER": "/citas/dev/link-keys"}
# local.messaging_environment; the default SMS and WhatsApp identities are null by default
# (variables.tf), and Terraform leaves a null one out.
MESSAGING_ENV = {
    "CITAS_NOTIFIER": "aws",
    "CITAS_PUBLIC_BASE_URL": "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/dev",
}
# Each function's own settings beyond FUNCTION_ENV, as local.functions gives them, by module.
MODULE_ENV: dict[str, dict[str, str]] = {
    "http_api": {
        "CITAS_BOOKING_QUEUE_URLS": f"PE={_QUEUE}-booking-requests-PE.fifo,"
        f"CL={_QUEUE}-booking-requests-CL.fifo",
        "CITAS_PAGE_TOKEN_KEY": "bench-page-token-key-0123456789abcdef",
    },
    "outbox_relay": {"CITAS_EVENTS_QUEUE_URL": f"{_QUEUE}-events.fifo"},
    "notifications": {**LINK_KEYS_ENV, **MESSAGING_ENV, "CITAS_HOLD_MINUTES": "30"},
    "reminders": {**LINK_KEYS_ENV, **MESSAGING_ENV},
    "offers_sweeper": {},
    "patient_pages": dict(LINK_KEYS_ENV),
    "inbound_sms": {**LINK_KEYS_ENV, **MESSAGING_ENV},
    "inbound_whatsapp": {**LINK_KEYS_ENV, **MESSAGING_ENV},
    # One function per country (booking_worker_pe, booking_worker_cl): the same code, so one
    # of them is measured.
    "booking_worker": {"CITAS_WORKER_COUNTRY": "PE"},
}
_TF_HANDLER = re.compile(r'handler\s*=\s*"entrypoints\.lambda\.(\w+)\.handler"')

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


def _defines_handler(path: Path) -> bool:
    """Whether the module at `path` binds a top-level `handler` (read, not imported)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError):
        return False
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "handler":
            return True
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        if any(isinstance(t, ast.Name) and t.id == "handler" for t in targets):
            return True
    return False


def handler_modules(lambda_dir: Path = LAMBDA_DIR) -> list[str]:
    """Every Lambda handler module under entrypoints/lambda/ (one with a `handler`)."""
    return [
        f"entrypoints.lambda.{path.stem}"
        for path in sorted(lambda_dir.glob("*.py"))
        if not path.stem.startswith("_") and _defines_handler(path)
    ]


def terraform_handlers(path: Path = TERRAFORM_LAMBDA) -> list[str]:
    """The modules whose `handler` infra/terraform/lambda.tf deploys, by short name."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    return sorted(set(_TF_HANDLER.findall(text)))


def deployment_check(modules: list[str], deployed: list[str]) -> dict[str, Any]:
    """The handler modules against Terraform's functions: what only one side has."""
    shorts = [m.rsplit(".", 1)[1] for m in modules]
    return {
        "terraform_file": str(TERRAFORM_LAMBDA.relative_to(REPO_ROOT)),
        "terraform_handlers": deployed,
        "not_deployed": [s for s in shorts if deployed and s not in deployed],
        "deployed_but_missing": [d for d in deployed if d not in shorts],
        "without_terraform_environment": [s for s in shorts if s not in MODULE_ENV],
    }


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
    rows: list[dict[str, Any]] = []
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


def configs_for(modules: list[str]) -> list[Config]:
    """The baselines, then every handler module on its Lambda configuration (aws backend);
    http_api also on the memory backend `citas serve` runs it on (the target)."""
    baseline = Config("python -c 'import boto3'", "import boto3", {}, kind="baseline")
    floor = Config("python -c pass", "pass", {}, kind="floor")
    configs = [baseline, floor]
    for module in modules:
        short = module.rsplit(".", 1)[1]
        extra = MODULE_ENV.get(short, {})
        backends = ("memory", "aws") if short == "http_api" else ("aws",)
        for backend in backends:
            env = (
                {"CITAS_BACKEND": "memory"}
                if backend == "memory"
                else {**AWS_ENV, **FUNCTION_ENV, **extra}
            )
            configs.append(
                Config(
                    f"{short} ({backend})",
                    CHILD.format(module=module),
                    env,
                    kind="handler",
                    module=module,
                    backend=backend,
                    settings=sorted(k for k in env if k.startswith("CITAS_")),
                )
            )
    return configs


def run(q: Quick, results_dir: Path) -> dict[str, Any]:
    # 12 commands a round since every function is measured (8 before): 13 rounds, not 21,
    # keep the family near its former ~52 s.
    runs = q.pick(13, 3)
    modules = handler_modules()
    configs = configs_for(modules)
    baseline = configs[0]
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
        "deployment": deployment_check(modules, terraform_handlers()),
        "environment": "Each aws row runs on the environment Terraform gives that function "
        "(local.function_environment and its own settings; stand-in values, endpoints never "
        "contacted)",
        "rows": rows,
        "importtime_http_api": imports,
        "target": {
            "what": "http_api (memory) median wall / `import boto3` median wall",
            "max_ratio": TARGET_RATIO,
            "measured": measured,
            "met": measured is not None and measured <= TARGET_RATIO,
        },
    }
