"""app/platform/config.py: environment parsing and defaults."""

from pathlib import Path

import pytest

from app.platform.config import PROJECT_ROOT, Config, load_config


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


def test_limits_and_retention_settings_are_parsed_and_checked():
    cfg = load_config(environ={
        "RADIO_BODY_TIMEOUT_S": "5", "RADIO_PREDICT_SLOTS": "3", "RADIO_DECODE_SLOTS": "2",
        "RADIO_HEALTH_TOKEN": "t0ken", "RADIO_MIN_FREE_MB": "100",
        "RADIO_UPLOAD_MAX_AGE_DAYS": "7", "RADIO_UPLOADS_MAX_MB": "512",
        "RADIO_CLEANUP_INTERVAL_S": "0", "RADIO_BREAKER_FAILURES": "5",
    })
    assert (cfg.body_timeout_s, cfg.predict_slots, cfg.decode_slots) == (5.0, 3, 2)
    assert cfg.health_token == "t0ken" and cfg.min_free_mb == 100.0
    assert (cfg.upload_max_age_days, cfg.uploads_max_mb, cfg.cleanup_interval_s) == (7, 512, 0)
    assert cfg.breaker_failures == 5
    with pytest.raises(ValueError, match="RADIO_PREDICT_SLOTS must be positive"):
        load_config(environ={"RADIO_PREDICT_SLOTS": "0"})
