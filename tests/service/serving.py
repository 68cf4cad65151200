"""Run `opsroute serve` as a real process on a free loopback port."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from router.mapping import default_mappings_dir

# Seconds a started process may take before /healthz responds (imports take 2-4 s).
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def auto_route_mappings_dir(target: Path) -> Path:
    """Copy the shipped mappings to `target` with a threshold of 0, and return it."""
    shutil.copytree(str(default_mappings_dir()), target)
    thresholds = target / "thresholds.yaml"
    text = thresholds.read_text()
    thresholds.write_text(text.replace("default: 0.9", "default: 0.0"))
    return target


class ServeProcess:
    """One `opsroute serve` process, stopped on exit and killed if it hangs."""

    def __init__(self, *, env: dict[str, str], log_path: Path, port: int | None = None):
        self.port = port or free_port()
        self.env = {**os.environ, **env, "OPSROUTE_PORT": str(self.port)}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def url(self) -> str:
        """Return the base URL of the service."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Start the process; it writes its log to `log_path`."""
        log = self.log_path.open("ab")
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "router.cli.serve", "--log-level", "info"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        return self

    def wait_healthy(self, timeout: float = START_TIMEOUT_SECONDS) -> float:
        """Wait for /healthz to return 200 and return the seconds since start.

        Raises:
            TimeoutError: it did not return 200 within `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return time.monotonic() - self.started_at
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError(
            f"/healthz did not return 200 within {timeout} s; see {self.log_path}"
        )

    def wait_ready(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Wait for /readyz to return 200.

        Raises:
            TimeoutError: it did not return 200 within `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(
            f"/readyz did not return 200 within {timeout} s; see {self.log_path}"
        )

    def kill(self) -> None:
        """Kill the process with SIGKILL, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(STOP_TIMEOUT_SECONDS)

    def stop(self) -> int | None:
        """Stop the process with SIGTERM, killing it if it does not exit in time."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_SECONDS)
        return self.process.returncode

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(
                f"opsroute serve exited with {self.process.returncode}: "
                f"{self.log_path.read_text()[-3000:]}"
            )

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
