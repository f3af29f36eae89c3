"""End-to-end fixtures: the real `citas serve` in a subprocess, reached over real HTTP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
# The console script pyproject.toml installs next to the interpreter running the tests.
CITAS_SCRIPT = Path(sys.executable).parent / "citas"
E2E_API_KEY = "e2e-secret-key"
BANNER = re.compile(
    r"^citas: serving (?P<url>http://\S+) \(backend (?P<backend>\w+)\), "
    r"x-api-key: (?P<key>\S+)$"
)
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


@dataclass
class RunningServer:
    """A `citas serve` subprocess with its output captured in two files."""

    process: subprocess.Popen[bytes]
    base_url: str
    api_key: str
    backend: str
    banner: str
    stdout_path: Path
    stderr_path: Path
    exit_code: int | None = field(default=None)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send `sig`, wait for the process to end and return its exit status."""
        if self.exit_code is not None:
            return self.exit_code
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            self.exit_code = self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"citas serve did not stop within {STOP_TIMEOUT}s of signal {sig}")
        return self.exit_code

    def stdout_lines(self) -> list[str]:
        """Everything the server printed on stdout so far."""
        return self.stdout_path.read_text(encoding="utf-8").splitlines()

    def stderr_lines(self) -> list[str]:
        """Everything the server printed on stderr so far."""
        return self.stderr_path.read_text(encoding="utf-8").splitlines()

    def api(self) -> Api:
        """A client with this server's URL and API key."""
        return Api(self.base_url, self.api_key)


class Api:
    """A small HTTP client of the citas API: base URL and `x-api-key` filled in."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.session = requests.Session()

    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = "default",
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send one request; `key=None` sends no `x-api-key`, any other string that key."""
        sent = dict(headers or {})
        if key == "default":
            sent["x-api-key"] = self.api_key
        elif key is not None:
            sent["x-api-key"] = key
        return self.session.request(
            method, self.base_url + path, headers=sent, timeout=15, **kwargs
        )

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET `path`."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        """POST to `path`."""
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        """PUT `path`."""
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        """PATCH `path`."""
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        """DELETE `path`."""
        return self.request("DELETE", path, **kwargs)

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()


def _clean_env(overrides: Mapping[str, str | None]) -> dict[str, str]:
    """The test process's environment without citas or AWS settings, plus `overrides`."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CITAS_", "AWS_", "POWERTOOLS_"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    # The suite runs at any hour: a message must not wait for 08:00 in Lima (quiet hours are
    # tested with fake clocks, tests/unit/test_cadence.py and test_messages.py).
    env["CITAS_QUIET_HOURS"] = "off"
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def launch(
    command: Sequence[str],
    workdir: Path,
    env: Mapping[str, str | None] | None = None,
) -> RunningServer:
    """Start `command` (a `citas serve --port 0 ...`), wait for its banner and first answer."""
    stdout_path = workdir / "stdout.log"
    stderr_path = workdir / "stderr.log"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        process = subprocess.Popen(
            list(command), cwd=REPO_ROOT, env=_clean_env(env or {}), stdout=out, stderr=err
        )
    deadline = time.monotonic() + START_TIMEOUT
    match = None
    while match is None:
        for line in stdout_path.read_text(encoding="utf-8").splitlines():
            match = BANNER.match(line) or match
        if match is not None:
            break
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            pytest.fail(
                f"citas serve printed no start-up line (exit {process.returncode}).\n"
                f"stdout:\n{stdout_path.read_text()[-3000:]}\n"
                f"stderr:\n{stderr_path.read_text()[-3000:]}"
            )
        time.sleep(0.05)
    server = RunningServer(
        process=process,
        base_url=match["url"],
        api_key=match["key"],
        backend=match["backend"],
        banner=match.group(0),
        stdout_path=stdout_path,
        stderr_path=stderr_path,
    )
    _wait_until_answering(server, deadline)
    return server


def _wait_until_answering(server: RunningServer, deadline: float) -> None:
    while True:
        try:
            requests.get(server.base_url + "/doctors/ping", timeout=2)
            return
        except requests.ConnectionError:
            if server.process.poll() is not None or time.monotonic() > deadline:
                server.stop(signal.SIGKILL)
                pytest.fail(f"citas serve never answered on {server.base_url}")
            time.sleep(0.05)


Launcher = Callable[..., RunningServer]


@pytest.fixture(scope="session")
def citas_script() -> Path:
    """The installed `citas` console script; fails (never skips) when it is missing."""
    if not CITAS_SCRIPT.exists():
        pytest.fail(
            f"{CITAS_SCRIPT} is missing: the package is not installed. Run `make test`.",
            pytrace=False,
        )
    return CITAS_SCRIPT


@pytest.fixture(scope="session")
def start_citas(citas_script: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    """Start more `citas serve` processes; each is stopped at the end of the session."""
    started: list[RunningServer] = []

    def start(
        *args: str,
        env: Mapping[str, str | None] | None = None,
        module: bool = False,
    ) -> RunningServer:
        program = [sys.executable, "-m", "entrypoints.local.cli"] if module else [str(citas_script)]
        command = [*program, "serve", "--host", "127.0.0.1", "--port", "0", *args]
        server = launch(command, tmp_path_factory.mktemp("citas"), env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def server(start_citas: Launcher) -> Iterator[RunningServer]:
    """The session's server: the real console script, memory backend, demo doctors."""
    running = start_citas(env={"CITAS_API_KEY": E2E_API_KEY})
    yield running
    status = running.stop()
    assert status == 0, f"citas serve exited with {status} on SIGTERM"


@pytest.fixture
def api(server: RunningServer) -> Iterator[Api]:
    """A client of the session's server."""
    client = server.api()
    yield client
    client.close()
