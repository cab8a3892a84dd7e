"""app/platform/model_client.py against the real model server, a closed port and a hung server."""

import helpers
import numpy as np
import pytest

from app.platform import model_client
from app.platform.config import load_config
from app.platform.contract import parse_response
from app.platform.errors import describe
from serving.preprocessing import preprocess_path


def _cfg(url, **kw):
    return load_config(environ={}, overrides={"mlflow_url": url, **kw})


def test_one_pooled_session_per_process():
    first = model_client.session(4)
    assert model_client.session(4) is first
    adapter = first.get_adapter("http://127.0.0.1")
    assert adapter._pool_maxsize == 4


def test_real_model_server_answers_the_contract(model_server, xray_path):
    cfg = _cfg(model_server)
    body = model_client.invoke(cfg, preprocess_path(xray_path), heatmap=True)
    parsed = parse_response(body)
    assert parsed["status"] in ("ok", "not_xray")
    assert parsed["model"]["name"]
    assert model_client.ping(cfg) == (True, "ping ok")
    assert model_client.server_version(cfg)


def test_closed_port_is_503_after_one_retry():
    cfg = _cfg(f"http://127.0.0.1:{helpers.free_port()}")
    with pytest.raises(model_client.ModelServerError) as info:
        model_client.invoke(cfg, np.zeros((224, 224), np.uint8))
    assert describe(info.value)[0] == 503
    assert "unreachable" in info.value.message
    ok, detail = model_client.ping(cfg)
    assert not ok and "unreachable" in detail


def test_hung_server_is_504_and_not_retried():
    server = helpers.SilentServer()
    try:
        cfg = _cfg(server.url, mlflow_timeout_s=0.5, health_timeout_s=0.5)
        with pytest.raises(model_client.ModelServerError) as info:
            model_client.invoke(cfg, np.zeros((224, 224), np.uint8))
        assert describe(info.value)[0] == 504
        assert "did not answer within 0.5 s" in info.value.message
        # Exactly one connection: a POST that reached the server is not sent twice.
        assert len(server.accepted) == 1
        ok, detail = model_client.ping(cfg)
        assert not ok and "no answer" in detail
    finally:
        server.close()


def test_dropped_connection_is_retried_once(model_server, xray_path):
    proxy = helpers.DroppingProxy(model_server)
    try:
        model_client._session = None  # a fresh pool, so the first connection is the dropped one
        body = model_client.invoke(_cfg(proxy.url), preprocess_path(xray_path))
        assert parse_response(body)["model"]["name"]
        assert proxy.connections == 2
    finally:
        proxy.close()
