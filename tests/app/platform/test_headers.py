"""app/platform/headers.py: security headers come from the app on pages, API answers and errors."""

import pytest

from app.platform.headers import HEADERS


@pytest.mark.parametrize("path", ["/", "/health", "/openapi.json", "/docs", "/no-such-page"])
def test_every_answer_carries_the_security_headers(offline_client, path):
    resp = offline_client.get(path)
    for name, value in HEADERS.items():
        assert resp.headers[name] == value, (path, name)
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["Cache-Control"] == "no-store"


def test_static_files_may_be_cached_but_not_sniffed(offline_client):
    resp = offline_client.get("/static/app.js")
    assert resp.status_code == 200 and resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers.get("Cache-Control") != "no-store"
