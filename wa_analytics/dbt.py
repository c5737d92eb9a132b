"""Running dbt against the same servers as everything else."""

import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def run_dbt(args: list[str], check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """``dbt <args>`` in the project root with the project's profiles (PG* from the environment)."""
    command = [sys.executable, "-c", "from dbt.cli.main import cli; cli()", *args]
    if "--profiles-dir" not in args and args and args[0] not in ("--version", "-h", "--help"):
        command += ["--profiles-dir", str(PROJECT_ROOT / "profiles")]
    return subprocess.run(command, cwd=PROJECT_ROOT, check=check, **kwargs)
