"""Start and stop `citas serve --port 0` for the HTTP benchmarks, the fuzz run and the soak."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from bench.common import REPO_ROOT

CITAS = Path(sys.executable).parent / "citas"
BANNER = re.compile(
    r"^citas: serving (?P<url>http://\S+) \(backend (?P<backend>\w+)\), x-api-key: (?P<key>\S+)$"
)


def clean_env(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without citas, AWS or Powertools settings, plus overrides."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CITAS_", "AWS_", "POWERTOOLS_"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides or {})
    return env


class Server:
    """A `citas serve` subprocess; its output goes to files, its banner gives URL and key."""

    def __init__(self, process: subprocess.Popen[bytes], out: IO[bytes], err: IO[bytes]) -> None:
        self.process = process
        self.out = out
        self.err = err
        self.base_url = ""
        self.api_key = ""
        self.backend = ""

    @classmethod
    def start(
        cls,
        args: Sequence[str] = ("--no-demo",),
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        command: Sequence[str] | None = None,
    ) -> Server:
        out = tempfile.TemporaryFile()  # noqa: SIM115  (closed in stop())
        err = tempfile.TemporaryFile()  # noqa: SIM115
        argv = list(command or [str(CITAS), "serve", "--host", "127.0.0.1", "--port", "0", *args])
        process = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=clean_env(env),
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
        server = cls(process, out, err)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in server.stdout().splitlines():
                match = BANNER.match(line.strip())
                if match:
                    server.base_url = match["url"]
                    server.api_key = match["key"]
                    server.backend = match["backend"]
                    return server
            if process.poll() is not None:
                break
            time.sleep(0.05)
        server.stop()
        raise RuntimeError(
            f"{' '.join(argv)} printed no start-up line (exit {process.returncode}):\n"
            f"{server.stdout()[-2000:]}\n{server.stderr()[-2000:]}"
        )

    def _read(self, handle: IO[bytes]) -> str:
        if handle.closed:
            return ""
        handle.flush()
        position = handle.tell()
        handle.seek(0)
        text = handle.read().decode("utf-8", errors="replace")
        handle.seek(position)
        return text

    def stdout(self) -> str:
        return self._read(self.out)

    def stderr(self) -> str:
        return self._read(self.err)

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode

    def close(self) -> None:
        self.stop()
        for handle in (self.out, self.err):
            if not handle.closed:
                handle.close()
