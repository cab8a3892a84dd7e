"""lifecycle/settings.py: one place for the lifecycle's configuration."""

from pathlib import Path

import pytest

from lifecycle.settings import PROJECT_ROOT, Settings, load


def test_defaults_are_the_shipped_registry_of_this_checkout():
    s = load({})
    assert s == Settings()
    assert s.tracking_uri == f"sqlite:///{PROJECT_ROOT / 'mlflow' / 'mlflow.db'}"
    assert s.gate_data == () and s.gate_production is None and s.gate_alpha == 0.05


def test_environment_overrides():
    s = load({"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000", "RADIO_GATE_DATA": "/a:/b",
              "RADIO_GATE_PRODUCTION": "/p/v3", "RADIO_GATE_ALPHA": "0.01",
              "RADIO_HEALTH_URL": "http://app:8080/health"})
    assert s.tracking_uri == "http://127.0.0.1:5000"
    assert s.gate_data == (Path("/a"), Path("/b")) and s.gate_production == Path("/p/v3")
    assert s.gate_alpha == 0.01 and s.health_url == "http://app:8080/health"


@pytest.mark.parametrize("alpha", ["0", "1", "-0.1"])
def test_a_meaningless_level_is_refused(alpha):
    with pytest.raises(ValueError, match="RADIO_GATE_ALPHA"):
        load({"RADIO_GATE_ALPHA": alpha})
