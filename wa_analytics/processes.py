"""Starting the product's own processes (service, workers) from the demo and the bench."""

import os
import socket
import subprocess
import sys
import time
import urllib.request


def spawn_cli(command: list[str], log_level: str = "WARNING", **kwargs) -> subprocess.Popen:
    """``wa-analytics <command>`` as a child process with this process's environment."""
    return subprocess.Popen(
        [sys.executable, "-m", "wa_analytics.cli", "--log-level", log_level, *command],
        env=os.environ.copy(),
        **kwargs,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(base_url: str, server: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until the ingest service answers ``/readyz`` (Redis and Postgres reachable)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("the ingest service exited; see its output above")
        try:
            with urllib.request.urlopen(f"{base_url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the ingest service did not become ready at {base_url}")


def stop_all(processes: list[subprocess.Popen], timeout: float = 30) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
