"""Bounded schemathesis runs (property-based API fuzzing) against a real gunicorn app and the
real model server, each with a valid API token of the role the routes need:

* a clinician's token on the documented API (``/openapi.json``): no 5xx and no answer
  outside the documented schema;
* a radiologist's and an admin's token on their routes (contributions, reviews, the queue;
  users, datasets, monitoring, model tasks), described for this test in PAGES below since
  the app documents only its JSON API: no 5xx.

The answers are read back from schemathesis's HAR report, so the test also proves that the
fuzzing got past authentication to the decoder: some uploads answered 200 (decoded and
analysed), some refused by the decoder itself (damaged, truncated, too small), none 401.
Upload bodies are real images often enough for that (tests/app/platform/schemathesis_uploads.py).

Bounded in count (RADIO_SCHEMATHESIS_EXAMPLES per operation, default 60) and time (a
subprocess deadline per run). Marked slow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import accounts
import helpers
import pytest

EXAMPLES = int(os.environ.get("RADIO_SCHEMATHESIS_EXAMPLES", "60"))
DEADLINE_S = 600
HOOKS = Path(__file__).with_name("schemathesis_uploads.py")
# The decoder's own refusals (serving/preprocessing.py), as the user reads them: only an
# upload that passed the format check and was opened as an image gets one of these.
DECODER_SAYS = ("is damaged or truncated", "too small to read", "does not decode as one")
LABELS = ["", "COVID", "Viral Pneumonia", "Other Abnormal", "Normal"]


def _form(properties: dict, required: list[str], media: str) -> dict:
    return {"required": True, "content": {media: {"schema": {
        "type": "object", "required": required, "properties": properties}}}}


def _op(tag: str, **extra) -> dict:
    return {"tags": [tag], "security": [{"bearer": []}],
            "responses": {"default": {"description": "an HTML page"}}, **extra}


def pages(pred_ids: list[str]) -> dict:
    """The radiologist's and admin's routes (not /admin/users/<id> and POST /admin/models:
    fuzzing them would disable this test's own accounts or promote models)."""
    pred = {"name": "pred_id", "in": "path", "required": True,
            "schema": {"anyOf": [{"enum": pred_ids or ["0" * 32]}, {"type": "string"}]}}
    page = {"name": "page", "in": "query", "schema": {"type": "string"}}
    return {
        "openapi": "3.1.0", "info": {"title": "Radio pages", "version": "test"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {
            "/contribute": {"post": _op("radiologist", requestBody=_form(
                {"file": {"type": "string", "format": "binary"},
                 "label": {"enum": LABELS}, "comment": {"type": "string"}},
                ["file"], "multipart/form-data"))},
            "/predictions/{pred_id}/review": {"post": _op("radiologist", parameters=[pred],
                requestBody=_form({"verdict": {"enum": ["validated", "corrected", "unknown",
                                                         "discarded"]},
                                   "label": {"enum": LABELS}, "comment": {"type": "string"},
                                   "then": {"enum": ["queue", ""]}},
                                  ["verdict"], "application/x-www-form-urlencoded"))},
            "/queue": {"get": _op("radiologist", parameters=[page])},
            "/predictions/{pred_id}": {"get": _op("radiologist", parameters=[pred])},
            "/predictions/{pred_id}/image": {"get": _op("radiologist", parameters=[pred])},
            "/admin/users": {"post": _op("admin", requestBody=_form(
                {"username": {"type": "string"},
                 "role": {"enum": ["clinician", "radiologist", "admin"]}},
                ["username", "role"], "application/x-www-form-urlencoded"))},
            "/datasets/snapshot": {"post": _op("admin")},
            "/admin/monitoring/{kind}.html": {"get": _op("admin", parameters=[
                {"name": "kind", "in": "path", "required": True,
                 "schema": {"anyOf": [{"enum": ["data", "model"]}, {"type": "string"}]}}])},
            "/admin/models/tasks/{task_id}": {"get": _op("admin", parameters=[
                {"name": "task_id", "in": "path", "required": True,
                 "schema": {"type": "string"}}])},
            "/history": {"get": _op("admin", parameters=[page, *[
                {"name": n, "in": "query", "schema": {"type": "string"}}
                for n in ("label", "from", "to", "state")]])},
        },
    }


@pytest.fixture(scope="module")
def app_server(model_server, tmp_path_factory):
    """A gunicorn app of its own (the fuzzing adds users and contributions that the shared
    gunicorn_app's other tests must not see)."""
    data = tmp_path_factory.mktemp("schemathesis-data")
    port = helpers.free_port()
    env = helpers.server_env(PYTHONPATH=str(helpers.ROOT), PORT=str(port), HOST="127.0.0.1",
                             MLFLOW_URL=model_server, RADIO_DATA_DIR=str(data),
                             RADIO_WORKERS="2", RADIO_METRICS_PORT="0")
    proc = helpers.start(helpers.gunicorn_cmd(), env, data.parent / "gunicorn.log")
    url = f"http://127.0.0.1:{port}"
    try:
        helpers.wait_until(f"{url}/login", proc, 60, lambda r: r.ok)
        yield url, env
    finally:
        helpers.stop(proc)


def _st(location: str, url: str, token: str, out: Path, checks: str, *extra: str) -> list:
    """One schemathesis run; the HAR entries of its requests."""
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st is not None, "schemathesis is a dev dependency (pip install '.[dev]')"
    har = out / "answers.har"
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)}
    done = subprocess.run(
        [st, "run", location, "--url", url, "--checks", checks,
         "-H", f"Authorization: Bearer {token}",
         "--max-examples", str(EXAMPLES), "--seed", "12", "--request-timeout", "60",
         "--generation-database", "none", "--no-color", "--report", "har",
         "--report-har-path", str(har), *extra],
        capture_output=True, text=True, timeout=DEADLINE_S, cwd=out, env=env)
    (out / "schemathesis.log").write_text(done.stdout + done.stderr)
    report = done.stdout[-6000:] + done.stderr[-2000:]
    assert done.returncode == 0, report
    return json.loads(har.read_text())["log"]["entries"]


def _refused_with_token(entries: list) -> list[str]:
    """Requests that sent an Authorization header yet got 401 or 403 (schemathesis also
    probes each secured operation once without one: those must get 401, and are left out)."""
    return [f"{e['request']['method']} {e['request']['url']}" for e in entries
            if e["response"]["status"] in (401, 403)
            and any(h["name"].lower() == "authorization" for h in e["request"]["headers"])]


def _answers(entries: list, method: str, path: str) -> list[tuple[int, str]]:
    return [(e["response"]["status"], e["response"]["content"].get("text") or "")
            for e in entries
            if e["request"]["method"] == method and urlsplit(e["request"]["url"]).path == path]


def _decoder_refusals(answers: list[tuple[int, str]]) -> int:
    return sum(1 for status, text in answers
               if status == 400 and any(words in text for words in DECODER_SAYS))


@pytest.mark.slow
def test_fuzzing_with_tokens_reaches_the_decoder_and_finds_no_server_error(app_server,
                                                                           tmp_path):
    url, env = app_server
    runs = {}
    # Every token before any fuzzing: the command line then never waits on the app's writes.
    tokens = {who: accounts.cli_token(env, f"fuzz-{who}", who)
              for who in ("clinician", "radiologist", "admin")}
    for who in tokens:
        (tmp_path / who).mkdir()
    runs["clinician"] = _st(
        f"{url}/openapi.json", url, tokens["clinician"],
        tmp_path / "clinician", "not_a_server_error,status_code_conformance,"
        "content_type_conformance,response_schema_conformance")
    predict = _answers(runs["clinician"], "POST", "/predict")
    statuses = Counter(status for status, _ in predict)
    assert statuses[200] > 0, statuses  # decoded and analysed
    assert _decoder_refusals(predict) > 0, statuses
    assert _refused_with_token(runs["clinician"]) == []  # the token was always accepted
    pred_ids = sorted({json.loads(text)["id"] for status, text in predict if status == 200})

    doc = tmp_path / "pages.json"
    doc.write_text(json.dumps(pages(pred_ids[:5])))
    for role in ("radiologist", "admin"):
        runs[role] = _st(str(doc), url, tokens[role],
                         tmp_path / role, "not_a_server_error", "--include-tag", role)
    contribute = _answers(runs["radiologist"], "POST", "/contribute")
    statuses = Counter(status for status, _ in contribute)
    # Past the decoder: stored (201), or decoded and then refused by the "not a chest X-ray"
    # gate that every contribution passes (422 in the gate's words; fuzzed pictures are
    # rarely chest films).
    past_decoder = statuses[201] + sum(1 for status, text in contribute
                                       if status == 422 and "not a chest X-ray" in text)
    assert past_decoder > 0 and _decoder_refusals(contribute) > 0, statuses
    for role in ("radiologist", "admin"):
        statuses = Counter(e["response"]["status"] for e in runs[role])
        assert _refused_with_token(runs[role]) == [], role
        assert not any(s >= 500 for s in statuses), (role, statuses)
        assert sum(n for s, n in statuses.items() if 200 <= s < 300) > 0, (role, statuses)
    print({who: len(entries) for who, entries in runs.items()})
