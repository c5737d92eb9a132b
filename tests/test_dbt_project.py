"""The dbt project itself: it builds (models, data tests, unit tests) and lints clean."""

import subprocess
import sys

from wa_analytics.dbt import PROJECT_ROOT, run_dbt


def test_dbt_build_passes_on_an_empty_raw_schema(db):
    """Analysts can build before any traffic arrives: every model and test copes with no rows."""
    result = run_dbt(["build"], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_dbt_docs_generate(db):
    result = run_dbt(["docs", "generate"], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:]


def test_sqlfluff_is_clean(servers):
    result = subprocess.run(
        [sys.executable, "-m", "sqlfluff", "lint", "dbt_project", "--nofail", "--format", "json"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    import json  # noqa: PLC0415

    violations = [
        f"{f['filepath']}:{v.get('start_line_no')} {v['code']} {v['description']}"
        for f in json.loads(result.stdout or "[]")
        for v in f["violations"]
    ]
    assert result.returncode == 0, result.stderr[-2000:]
    assert violations == []
