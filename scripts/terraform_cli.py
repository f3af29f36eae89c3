"""Running Terraform on a copy of infra/terraform: the helpers the tests and scripts share.

A copy, because `init` writes a .terraform directory and a lock file, and an apply a state,
none of which belongs in the repository. The copy keeps the layout the configuration reads
files by (`../../api/openapi.yaml`, `../../dist/lambda.zip`).

The AWS provider comes from a local mirror when TF_INIT_FLAGS, TF_PLUGIN_DIR or TF_CLI_CONFIG_FILE
configures one (or /opt/tf-plugins exists), else from the registry (`plugin_flags`).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TF_DIR = ROOT / "infra" / "terraform"
OPENAPI = ROOT / "api" / "openapi.yaml"
DEFAULT_PLUGIN_DIR = Path("/opt/tf-plugins")

INIT_FAILED = "terraform init failed (set TF_PLUGIN_DIR to a provider mirror when offline)"

# Terraform's own chatter that only a person at a prompt needs.
QUIET_ENVIRONMENT = {"TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}


def terraform_binary() -> str | None:
    """The terraform on the PATH (or the one $TERRAFORM names), None without one."""
    return shutil.which(os.environ.get("TERRAFORM", "terraform"))


def plugin_flags() -> list[str]:
    """The flags for `terraform init` that say where the AWS provider comes from.

    In order: TF_INIT_FLAGS as given (e.g. `-plugin-dir=/opt/tf-plugins`, the variable
    mk/infra.mk takes too); `-plugin-dir` of TF_PLUGIN_DIR; none when TF_CLI_CONFIG_FILE names
    a file (its `provider_installation` decides, a filesystem mirror say); else
    /opt/tf-plugins where it exists, and the registry without it.
    """
    if flags := os.environ.get("TF_INIT_FLAGS", "").strip():
        return shlex.split(flags)
    configured = os.environ.get("TF_PLUGIN_DIR")
    if configured:
        return [f"-plugin-dir={configured}"]
    cli_config = os.environ.get("TF_CLI_CONFIG_FILE")
    if cli_config and Path(cli_config).is_file():
        return []
    return [f"-plugin-dir={DEFAULT_PLUGIN_DIR}"] if DEFAULT_PLUGIN_DIR.is_dir() else []


def run(
    *args: str,
    cwd: Path,
    timeout: float | None = 600,
    env: Mapping[str, str] | None = None,
    echo: Callable[[str], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `terraform *args` in `cwd` and return what it printed (with `echo`: stderr merged).

    `env` replaces the environment (the quiet settings are always added). `echo` receives each
    line as it comes, for a person watching (then there is no timeout). Ctrl-C is passed on to
    terraform, which then stops its operation and writes the state, before it is raised here.
    """
    binary = terraform_binary()
    if binary is None:
        raise FileNotFoundError("terraform is not on the PATH")
    command = [binary, *args]
    # Its own session, so that a Ctrl-C at the terminal reaches terraform once, from us, and
    # only after we decided how to stop.
    with subprocess.Popen(
        command,
        cwd=cwd,
        env={**(os.environ if env is None else env), **QUIET_ENVIRONMENT},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if echo else subprocess.PIPE,
        start_new_session=True,
    ) as process:
        try:
            if echo is None:
                stdout, stderr = process.communicate(timeout=timeout)
            else:
                stdout, stderr = _follow(process, echo), ""
        except KeyboardInterrupt:
            _stop(process, graceful=True)
            raise
        except BaseException:
            _stop(process, graceful=False)
            raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _follow(process: subprocess.Popen[str], echo: Callable[[str], None]) -> str:
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        echo(line)
    process.wait()
    return "".join(lines)


def _stop(process: subprocess.Popen[str], *, graceful: bool) -> None:
    # SIGINT is terraform's "stop cleanly": it finishes the calls in flight and saves the
    # state. A second Ctrl-C while it does so, or a timeout, kills it. communicate(), not
    # wait(): its last words must not fill the pipe and block it.
    if graceful and process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=120)
        except BaseException:
            process.kill()
            raise
    if process.poll() is None:
        process.kill()
        process.wait()


def copy_configuration(root: Path) -> Path:
    """Copy infra/terraform to `root`/infra/terraform, with the api/openapi.yaml it reads."""
    copy = root / "infra" / "terraform"
    shutil.copytree(TF_DIR, copy, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    (root / "api").mkdir(exist_ok=True)
    shutil.copy(OPENAPI, root / "api" / "openapi.yaml")
    return copy


def init(workdir: Path, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`terraform init` without a backend, from the provider mirror when there is one."""
    return run(
        "init", "-backend=false", "-input=false", "-no-color", *plugin_flags(), cwd=workdir, env=env
    )
