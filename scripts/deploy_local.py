#!/usr/bin/env python3
"""Deploy infra/terraform to moto's AWS emulator on this machine: apply, plan, destroy.

The real configuration, on a copy, with a generated override file that points every AWS
service it uses at a moto server on a free port (scripts/emulator_override.py, which also
lists the workarounds for moto's gaps). Every part of the stack is on (WAF, the stack's KMS
keys, alarms), with two clinics. The Lambda functions get the real artifact, built by
scripts/package_lambda.py (a few seconds once its wheel cache is filled) unless one is given.
moto runs with its AWS managed IAM policies loaded (MOTO_IAM_LOAD_MANAGED_POLICIES), which the
API Gateway logging role attaches. Nothing reaches AWS: credentials are dummies and every
AWS_* variable of the caller's environment is dropped.

`make deploy-local` runs this: apply, print the outputs, check that a second plan is empty,
then keep moto running until Ctrl-C, then destroy (and check that the state is empty) and
stop. `--no-wait` destroys at once. tests/infra/test_terraform_apply.py drives the same steps.

Usage: python scripts/deploy_local.py [--no-wait] [--port N] [--lambda-zip PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Generic, TypeVar

if not __package__:  # run as `python scripts/deploy_local.py`: make `scripts.` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.emulator_override import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    write_emulator_files,
)
from scripts.terraform_cli import (
    INIT_FAILED,
    ROOT,
    copy_configuration,
    run,
    terraform_binary,
)
from scripts.terraform_cli import init as init_workdir

T = TypeVar("T")
MOTO_START_SECONDS = 30
PLAN_FILE = "emulated.tfplan"
PACKAGE_SCRIPT = ROOT / "scripts" / "package_lambda.py"
# A line of terraform's output worth showing a person while it works.
_PROGRESS = re.compile(
    r"(Creation|Destruction|Modifications) complete|^(Apply|Destroy) complete|^Error"
)


class DeployError(RuntimeError):
    """The emulator or the artifact could not be set up."""


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on (moto takes it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class MotoServer:
    """moto's server (every service, in memory) in a process of its own, on a free port."""

    def __init__(self, log: Path, port: int | None = None) -> None:
        self.log = log
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The endpoint every service is reached at."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server and wait until it listens."""
        environment = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        with self.log.open("wb") as log:
            # Its own session: a Ctrl-C at the terminal must not stop it before the destroy.
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=True,
            )
        deadline = time.monotonic() + MOTO_START_SECONDS
        while not _listening(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise DeployError(f"moto did not listen on {self.url}:\n{self.log_tail()}")
            time.sleep(0.1)

    def alive(self) -> bool:
        """Whether the server is still running."""
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL if it lingers."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server's log (its tracebacks say what it does not emulate)."""
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass(frozen=True)
class Step:
    """One terraform command and what came of it."""

    command: str
    returncode: int
    stdout: str
    output: str  # stdout, then stderr
    seconds: float

    @classmethod
    def of(cls, done: subprocess.CompletedProcess[str], started: float) -> Step:
        """The step of a finished command that started at `started` (time.monotonic())."""
        command = "terraform " + " ".join(str(a) for a in done.args[1:])
        output = done.stdout + done.stderr
        return cls(command, done.returncode, done.stdout, output, time.monotonic() - started)

    @property
    def ok(self) -> bool:
        """Whether it exited with 0."""
        return self.returncode == 0

    def tail(self, chars: int = 6000) -> str:
        """The end of its output, where terraform puts its errors."""
        header = f"$ {self.command} (exit {self.returncode}, {self.seconds:.0f} s)"
        return f"{header}\n{self.output[-chars:]}"


def planned_changes(plan: Step) -> list[str]:
    """The `# <address> will be ...` lines of a plan: what it would change."""
    return re.findall(r"^  # (.+? (?:will|must) be .+)$", plan.output, re.MULTILINE)


def emulator_environment(endpoint: str) -> dict[str, str]:
    """The caller's environment without any AWS setting, and every SDK endpoint on moto."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {
        **kept,
        # A service missing from the override's endpoints still reaches moto, never AWS.
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": REGION,
    }


class EmulatedStack:
    """A copy of infra/terraform in `root` whose provider talks to the moto at `endpoint`."""

    def __init__(self, root: Path, endpoint: str, lambda_zip: Path) -> None:
        self.endpoint = endpoint
        self.workdir = copy_configuration(root)
        self.variables = write_emulator_files(self.workdir, endpoint, lambda_zip)
        self.env = emulator_environment(endpoint)

    def terraform(
        self, *args: str, timeout: float | None = 600, echo: Callable[[str], None] | None = None
    ) -> Step:
        """Run one terraform command in the copy, timed."""
        started = time.monotonic()
        done = run(*args, cwd=self.workdir, timeout=timeout, env=self.env, echo=echo)
        return Step.of(done, started)

    def init(self) -> Step:
        """`terraform init`, offline from the provider mirror when there is one."""
        started = time.monotonic()
        return Step.of(init_workdir(self.workdir, env=self.env), started)

    def apply(self, echo: Callable[[str], None] | None = None) -> Step:
        """`terraform apply -auto-approve`."""
        return self.terraform(
            "apply", "-auto-approve", "-input=false", "-no-color", timeout=1500, echo=echo
        )

    def plan(self, out: str = PLAN_FILE) -> Step:
        """`terraform plan -detailed-exitcode -out=<out>`: exit 0 means no change, 2 some."""
        return self.terraform(
            "plan", "-detailed-exitcode", "-input=false", "-no-color", f"-out={out}", timeout=900
        )

    def show(self, plan: str = PLAN_FILE) -> dict[str, Any]:
        """A saved plan as JSON (`terraform show -json`): what checkov scans."""
        done = self.terraform("show", "-json", "-no-color", plan, timeout=300)
        if not done.ok:
            raise DeployError(done.tail())
        shown: dict[str, Any] = json.loads(done.stdout)
        return shown

    def destroy(self, echo: Callable[[str], None] | None = None) -> Step:
        """`terraform destroy -auto-approve`."""
        return self.terraform(
            "destroy", "-auto-approve", "-input=false", "-no-color", timeout=1200, echo=echo
        )

    def outputs(self) -> dict[str, Any]:
        """Every output's value (sensitive ones too), from `terraform output -json`."""
        done = self.terraform("output", "-json", "-no-color", timeout=120)
        if not done.ok:
            raise DeployError(done.tail())
        return {name: item["value"] for name, item in json.loads(done.stdout).items()}

    def state_list(self) -> list[str]:
        """The addresses in the state (`terraform state list`); none before an apply."""
        done = self.terraform("state", "list", timeout=120)
        # Without a state file at all, state list says so and exits 1: an empty state.
        if not done.ok and "No state file was found" in done.output:
            return []
        if not done.ok:
            raise DeployError(done.tail())
        return done.stdout.split()


def build_lambda_zip(output: Path) -> Path:
    """The real Lambda artifact, by scripts/package_lambda.py (its wheel cache is reused)."""
    command = [sys.executable, str(PACKAGE_SCRIPT), "--output", str(output)]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=900, check=False, cwd=ROOT
    )
    if done.returncode != 0:
        raise DeployError(f"building the Lambda artifact failed:\n{done.stdout}{done.stderr}")
    return output


@contextmanager
def emulated_stack(
    root: Path, lambda_zip: Path | None = None, port: int | None = None
) -> Iterator[tuple[EmulatedStack, MotoServer]]:
    """Start moto and prepare the copy in `root`; stop moto on the way out."""
    artifact = lambda_zip or build_lambda_zip(root / "lambda.zip")
    with MotoServer(root / "moto.log", port) as moto:
        yield EmulatedStack(root, moto.url, artifact.resolve()), moto


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Let SIGTERM unwind like Ctrl-C, so that terraform and moto are stopped, not orphaned."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class Lifecycle(Generic[T]):
    """What an apply, a second plan and a destroy did, with what was seen in between."""

    apply: Step
    variables: dict[str, object] = field(default_factory=dict)  # what was applied
    outputs: dict[str, Any] = field(default_factory=dict)
    state_after_apply: list[str] = field(default_factory=list)
    inspected: T | None = None
    plan: Step | None = None
    plan_json: dict[str, Any] | None = None  # the second plan, `terraform show -json`
    destroy: Step | None = None
    state_after_destroy: list[str] | None = None

    def timings(self) -> str:
        """How long each step took, e.g. `apply 150 s, plan 25 s, destroy 47 s`."""
        steps = {"apply": self.apply, "plan": self.plan, "destroy": self.destroy}
        return ", ".join(f"{name} {s.seconds:.0f} s" for name, s in steps.items() if s is not None)


def run_lifecycle(stack: EmulatedStack, inspect: Callable[[EmulatedStack], T]) -> Lifecycle[T]:
    """Apply, look at the live stack, plan again, destroy; then list what the state still holds.

    The destroy runs after a failed apply too, so whatever it created is checked to go.
    """
    life: Lifecycle[T] = Lifecycle(apply=stack.apply(), variables=stack.variables)
    if life.apply.ok:
        life.outputs = stack.outputs()
        life.state_after_apply = stack.state_list()
        life.inspected = inspect(stack)
        life.plan = stack.plan()
        # The plan of the applied stack knows every value (keys' ARNs included), which a plan
        # of a new stack leaves unknown: tests/infra/test_checkov_plans.py scans this one.
        life.plan_json = stack.show() if life.plan.returncode in (0, 2) else None
    life.destroy = stack.destroy()
    life.state_after_destroy = stack.state_list()
    return life


def _say(message: str) -> None:
    print(f"deploy-local: {message}", flush=True)


def _progress(line: str) -> None:
    if _PROGRESS.search(line):
        print(f"  {line.rstrip()}", flush=True)


def _show_deployed(stack: EmulatedStack, moto: MotoServer) -> None:
    print(stack.terraform("output", "-no-color", timeout=120).stdout, flush=True)
    _say(f"the working copy: {stack.workdir}")
    _say(f"clinics' API keys: terraform -chdir={stack.workdir} output -json clinic_api_keys")
    _say(
        "look around with the AWS CLI or boto3:"
        f" AWS_ENDPOINT_URL={moto.url} AWS_ACCESS_KEY_ID={ACCESS_KEY}"
        f" AWS_SECRET_ACCESS_KEY={SECRET_KEY} AWS_REGION={REGION}"
        " aws dynamodb describe-table --table-name " + str(stack.outputs().get("table_name"))
    )


def _wait_for_interrupt(moto: MotoServer) -> None:
    _say("moto keeps the stack until Ctrl-C, which destroys it and stops moto")
    try:
        while moto.alive():
            time.sleep(1)
        _say("moto stopped on its own")
    except KeyboardInterrupt:
        print()


def _deploy(stack: EmulatedStack, moto: MotoServer, wait: bool) -> int:
    _say(f"moto on {moto.url} (log: {moto.log})")
    step = stack.init()
    if not step.ok:
        _say(f"{INIT_FAILED}:\n{step.tail()}")
        return 1
    _say("terraform apply: about 3 minutes, mostly the AWS provider waiting for each resource")
    step = stack.apply(echo=_progress)
    if not step.ok:
        _say(f"apply failed:\n{step.tail()}\n--- moto's log ---\n{moto.log_tail()}")
        return 1
    _show_deployed(stack, moto)
    plan = stack.plan()
    changes = planned_changes(plan)
    _say(
        "a second plan is empty"
        if plan.ok
        else f"a second plan is not empty: {changes or plan.tail()}"
    )
    if wait:
        _wait_for_interrupt(moto)
    _say("terraform destroy")
    step = stack.destroy(echo=_progress)
    left = stack.state_list()
    _say(
        f"destroyed; state left: {left or 'none'}" if step.ok else f"destroy failed:\n{step.tail()}"
    )
    return 0 if plan.ok and step.ok and not left else 1


def main(argv: list[str] | None = None) -> int:
    """Deploy, show, (wait,) destroy; exit 0 when all of it went as it should."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--no-wait", action="store_true", help="destroy at once, no Ctrl-C")
    parser.add_argument("--port", type=int, help="moto's port (default: a free one)")
    parser.add_argument("--lambda-zip", type=Path, help="the artifact (default: build one)")
    args = parser.parse_args(argv)
    if terraform_binary() is None:
        _say("terraform is not on the PATH (https://developer.hashicorp.com/terraform/install)")
        return 2
    with sigterm_as_interrupt(), tempfile.TemporaryDirectory(prefix="citas-deploy-local-") as tmp:
        try:
            with emulated_stack(Path(tmp), args.lambda_zip, args.port) as (stack, moto):
                return _deploy(stack, moto, wait=not args.no_wait)
        except KeyboardInterrupt:
            _say("interrupted: moto is stopped, and the stack with it")
            return 130
        except DeployError as e:
            _say(str(e))
            return 1


if __name__ == "__main__":
    sys.exit(main())
