"""The bad-input corpus (tests/corpus.py) against a real gunicorn: every case gets its
status and a message naming the problem, nothing is stored, and the app keeps serving."""

from __future__ import annotations

import corpus
import helpers
import pytest
import requests

from app.platform.config import load_config

CASES = corpus.cases(max_mb=5)  # the gunicorn_app fixture's RADIO_MAX_UPLOAD_MB


def test_the_corpus_is_large_and_names_are_unique():
    assert len(CASES) >= 64
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_its_status_and_message(gunicorn_app, case):
    url = f"{gunicorn_app['url']}/predict"
    cfg = load_config(environ=gunicorn_app["env"])
    before = helpers.stored_images(cfg)
    if case.file is not None:
        resp = requests.post(url, files={"file": ("x.png", case.file, "image/png")},
                             headers=gunicorn_app["auth"], timeout=60)
    else:
        headers = {"Content-Type": case.content_type} if case.content_type else {}
        resp = requests.post(url, data=case.body, headers={**headers, **gunicorn_app["auth"]},
                             timeout=60)
    assert resp.status_code == case.status, resp.text
    assert resp.headers["Content-Type"] == "application/json"
    assert case.words.lower() in resp.json()["error"].lower()
    assert helpers.stored_images(cfg) == before
