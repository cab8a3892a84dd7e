"""app/platform/wsgi.py + app/platform/gunicorn.conf.py: end to end through a real gunicorn
process."""

import helpers
import requests

from app.platform.config import load_config

PHI_NAME = "Smith_John_MRN987654.png"


def _post(app: dict, data: bytes, name: str = "x.png") -> requests.Response:
    # Exactly what `curl -H "Authorization: Bearer $T" -F file=@x.png` sends.
    return requests.post(f"{app['url']}/predict", files={"file": (name, data, "image/png")},
                         headers=app["auth"], timeout=60)


def test_predict_through_gunicorn(gunicorn_app, xray_path):
    data = xray_path.read_bytes()
    resp = _post(gunicorn_app, data, PHI_NAME)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] in ("ok", "not_xray") and body["model"]["version"]
    row, image = helpers.kept(load_config(environ=gunicorn_app["env"]), body["id"])
    assert image == data and row["label"] == body["label"]
    # The server log names the request id, never the file name.
    log = helpers.log_tail(gunicorn_app["proc"], 400)
    assert body["id"] in log and "Smith" not in log and "MRN" not in log


def test_bad_inputs_through_gunicorn_then_still_serving(gunicorn_app, xray_path, bomb_png_bytes):
    limit = gunicorn_app["max_mb"]
    cases = [
        (b"", 400),
        (b"just text\n" * 100, 415),
        (helpers.truncated_jpeg(), 400),
        (bomb_png_bytes, 400),
        (b"\x89PNG\r\n\x1a\n" + bytes(limit * 1024 * 1024 + 1), 413),
    ]
    for data, status in cases:
        resp = _post(gunicorn_app, data)
        assert resp.status_code == status, resp.text
        assert resp.headers["Content-Type"] == "application/json"
        assert resp.json()["error"]
    assert resp.json()["error"] == f"The file is too large; the limit is {limit} MB."
    assert _post(gunicorn_app, xray_path.read_bytes()).status_code == 200


def test_pages_and_json_errors_through_gunicorn(gunicorn_app):
    url = gunicorn_app["url"]
    assert requests.get(f"{url}/", timeout=10).text.count("Decision support") == 1
    assert requests.get(f"{url}/health", timeout=10).json()["status"] == "ok"
    assert requests.get(f"{url}/openapi.json", timeout=10).json()["openapi"].startswith("3.")
    resp = requests.get(f"{url}/missing", timeout=10)
    assert resp.status_code == 404 and resp.json()["error"]
