"""app/config.py: environment parsing and defaults."""

from pathlib import Path

import pytest

from app.config import PROJECT_ROOT, Config, load_config


def test_defaults_without_environment():
    cfg = load_config(environ={})
    assert cfg.mlflow_url == "http://127.0.0.1:8000"
    assert cfg.mlflow_timeout_s == 10.0
    assert cfg.max_upload_mb == 20.0
    assert cfg.max_upload_bytes == 20 * 1024 * 1024
    assert cfg.data_dir == PROJECT_ROOT / "var" / "data"


def test_environment_is_parsed():
    cfg = load_config(environ={
        "MLFLOW_URL": "http://model:9000/", "MLFLOW_TIMEOUT_S": "2.5",
        "RADIO_MAX_UPLOAD_MB": "1", "RADIO_DATA_DIR": "/srv/radio", "RADIO_LOG_LEVEL": "debug",
    })
    assert cfg.mlflow_url == "http://model:9000"  # trailing slash dropped
    assert cfg.mlflow_timeout_s == 2.5
    assert cfg.max_upload_bytes == 1024 * 1024
    assert cfg.data_dir == Path("/srv/radio")
    assert cfg.log_level == "DEBUG"


def test_bad_value_names_the_variable():
    with pytest.raises(ValueError, match="MLFLOW_TIMEOUT_S"):
        load_config(environ={"MLFLOW_TIMEOUT_S": "ten"})
    with pytest.raises(ValueError, match="positive"):
        load_config(environ={"RADIO_MAX_UPLOAD_MB": "0"})


def test_overrides_apply_on_top_and_reject_unknown_keys():
    cfg = load_config(environ={"MLFLOW_URL": "http://a"}, overrides={"data_dir": "/tmp/x"})
    assert cfg.mlflow_url == "http://a" and cfg.data_dir == Path("/tmp/x")
    with pytest.raises(ValueError, match="unknown"):
        load_config(environ={}, overrides={"nope": 1})
    assert isinstance(cfg, Config)
