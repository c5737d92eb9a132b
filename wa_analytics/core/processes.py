"""Starting the product's own processes (service, workers) from the demo and the bench."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def spawn_cli(command: list[str], log_level: str = "WARNING", **kwargs) -> subprocess.Popen:
    """``wa-analytics <command>`` as a child process with this process's environment."""
    return subprocess.Popen(
        [sys.executable, "-m", "wa_analytics.cli", "--log-level", log_level, *command],
        env=os.environ.copy(),
        **kwargs,
    )


def free_port(wanted: int = 0) -> int:
    """``wanted`` if it is free on loopback, else any free port."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", wanted))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(
    base_url: str, server: subprocess.Popen, timeout: float = 60, path: str = "/readyz"
) -> None:
    """Wait until the server answers ``path`` (the ingest service's ``/readyz``: Redis and
    Postgres reachable)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server for {base_url} exited; see its output")
        try:
            with urllib.request.urlopen(f"{base_url}{path}", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not become ready at {base_url}")


def stop_all(processes: list[subprocess.Popen], timeout: float = 30) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_detached(command: list[str], name: str, data_dir: Path) -> subprocess.Popen:
    """``wa-analytics <command>`` left running after this process exits (like the embedded
    servers), its pid in ``<data_dir>/<name>.pid`` for ``stop_detached``, its output in
    ``<data_dir>/<name>.log``. A previous one of the same name is stopped first."""
    stop_detached(name, data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / f"{name}.log", "ab") as log:
        process = spawn_cli(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    (data_dir / f"{name}.pid").write_text(str(process.pid))
    return process


def stop_detached(name: str, data_dir: Path, timeout: float = 10) -> bool:
    """Stop what ``start_detached`` started under ``name``; False if it was not running.

    The pid file may be stale (a reboot, a crash) and its pid reused: only a process whose
    command line is ``wa_analytics.cli ... <name>`` is signalled."""
    pid_file = data_dir / f"{name}.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text())
    pid_file.unlink()
    if not _is_ours(pid, name):
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)  # gunicorn's master and its workers
        except (ProcessLookupError, PermissionError):
            return sig == signal.SIGKILL
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _is_ours(pid, name):
                return True
            time.sleep(0.1)
    return True


def _is_ours(pid: int, name: str) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"wa_analytics.cli" in command and name.encode() in command
