"""GET /health and GET /version."""

import sys


def test_health_ok_with_real_model_server(client, model_server):
    resp = client.get("/health")
    assert resp.status_code == 200
    assert resp.json == {"status": "ok", "app": "ok",
                         "model_server": {"url": model_server, "ok": True, "detail": "ping ok"}}


def test_health_degraded_when_model_server_down(offline_client):
    resp = offline_client.get("/health")
    assert resp.status_code == 200  # the app itself works: keep it in rotation
    assert resp.json["status"] == "degraded" and resp.json["app"] == "ok"
    assert resp.json["model_server"]["ok"] is False
    assert "unreachable" in resp.json["model_server"]["detail"]


def test_health_503_when_data_dir_unusable(make_app, tmp_path):
    blocker = tmp_path / "f"
    blocker.write_text("x")
    resp = make_app(data_dir=blocker / "d").test_client().get("/health")
    assert resp.status_code == 503 and resp.json["app"].startswith("data directory")


def test_version(client, model_server):
    from app import __version__

    body = client.get("/version").json
    assert body["app"] == __version__
    assert body["python"] == "{}.{}.{}".format(*sys.version_info[:3])
    assert body["model_server"]["url"] == model_server and body["model_server"]["mlflow"]


def test_version_without_model_server(offline_client):
    body = offline_client.get("/version").json
    assert body["model_server"]["mlflow"] is None
