"""The dbt project itself: it builds (models, data tests, unit tests) and lints clean."""

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import yaml

from wa_analytics.core import limits
from wa_analytics.core.dbt import PROJECT_ROOT, run_dbt
from worker.parsing.event import EARLIEST_PLAUSIBLE, MAX_CLOCK_SKEW


def test_dbt_build_passes_on_an_empty_raw_schema(db):
    """Analysts can build before any traffic arrives, on a database dbt has never built: every
    model and test copes with no rows and no table of its own yet (a unit test's fixture for an
    incremental model's stored rows included)."""
    db.execute("drop schema if exists staging, intermediate, marts, audit cascade")
    for _ in range(2):  # a first build, then an incremental one
        result = run_dbt(["build"], check=False, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_dbt_docs_generate(db):
    result = run_dbt(["docs", "generate"], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:]


def test_sqlfluff_is_clean(servers):
    result = subprocess.run(
        [sys.executable, "-m", "sqlfluff", "lint", "dbt_project", "--format", "json"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    files = json.loads(result.stdout) if result.stdout.strip() else []
    violations = [
        f"{f['filepath']}:{v.get('start_line_no')} {v['code']} {v['description']}"
        for f in files
        for v in f["violations"]
    ]
    assert violations == []
    assert result.returncode == 0, result.stderr[-2000:]
    # It linted the project, every model included: an empty or partial run is no pass.
    linted = {Path(f["filepath"]).name for f in files}
    models = {path.name for path in (PROJECT_ROOT / "dbt_project" / "models").rglob("*.sql")}
    assert len(models) > 20 and models <= linted, sorted(models - linted)


def test_limits_in_dbt_vars_equal_the_contract():
    """dbt excludes exactly what the worker refuses: the same numbers on both sides."""
    project = yaml.safe_load((PROJECT_ROOT / "dbt_project.yml").read_text())["vars"]
    assert project["max_id_length"] == limits.MAX_ID_LENGTH
    assert project["max_text_length"] == limits.MAX_TEXT_LENGTH
    assert project["max_integer"] == limits.MAX_INTEGER
    earliest = datetime.fromisoformat(project["earliest_occurred_at"])
    assert earliest == EARLIEST_PLAUSIBLE
    count, unit = project["max_clock_skew"].split()
    assert timedelta(**{unit.rstrip("s") + "s": int(count)}) == MAX_CLOCK_SKEW
