"""A bounded schemathesis run (property-based API fuzzing from /openapi.json) against the
real gunicorn app and model server: no 5xx and no answer outside the documented schema.

Bounded in count (RADIO_SCHEMATHESIS_EXAMPLES per operation, default 500) and time (a
subprocess deadline): a few minutes at most. Marked slow.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = int(os.environ.get("RADIO_SCHEMATHESIS_EXAMPLES", "500"))
DEADLINE_S = 300


@pytest.mark.slow
def test_fuzzing_the_documented_api_finds_no_server_error(gunicorn_app, tmp_path):
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    if st is None:
        pytest.skip("schemathesis is not installed (pip install '.[dev]')")
    out = subprocess.run(
        [st, "run", f"{gunicorn_app['url']}/openapi.json",
         "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
         "response_schema_conformance",
         "--max-examples", str(EXAMPLES), "--seed", "12", "--request-timeout", "60",
         "--generation-database", "none", "--no-color"],
        capture_output=True, text=True, timeout=DEADLINE_S, cwd=tmp_path,
    )
    report = out.stdout[-6000:] + out.stderr[-2000:]
    assert out.returncode == 0, report
    assert "passed" in out.stdout.lower(), report
