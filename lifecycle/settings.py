"""Configuration of the lifecycle commands and jobs, read from the environment in one place.

Every setting has a default that works on a developer machine with the shipped registry
(``mlflow/`` under the project root); docs/lifecycle.md lists them. Which registry and
model are :mod:`radio_config`'s answer, the same the app and the monitoring jobs read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import radio_config
from radio_config import PROJECT_ROOT


@dataclass(frozen=True)
class Settings:
    """Lifecycle settings; field comments name the environment variable."""

    # MLFLOW_TRACKING_URI: the registry (a sqlite:/// file or the host's http(s) server).
    tracking_uri: str = radio_config.SHIPPED_TRACKING_URI
    # Folder the registry's relative artefact paths start from (a shipped-style registry
    # stores them relative to its parent folder): RADIO_REGISTRY_ROOT.
    registry_root: Path = PROJECT_ROOT
    model_name: str = radio_config.MODEL_NAME  # RADIO_MODEL_NAME
    # The gate's held-out data: source folders with a val split (RADIO_GATE_DATA, one or
    # more paths separated by ':') and a production dataset version (RADIO_GATE_PRODUCTION).
    gate_data: tuple[Path, ...] = ()
    gate_production: Path | None = None
    gate_alpha: float = 0.05  # RADIO_GATE_ALPHA: one-sided McNemar level per source
    # Append-only log of every lifecycle action (RADIO_LIFECYCLE_LOG).
    events_log: Path = PROJECT_ROOT / "var" / "lifecycle" / "events.jsonl"
    # The app's health URL the healthcheck job asks (RADIO_HEALTH_URL); the app's /health
    # asks the model server in turn.
    health_url: str = "http://127.0.0.1:8080/health"


def _paths(raw: str) -> tuple[Path, ...]:
    return tuple(Path(p) for p in raw.split(":") if p)


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """:class:`Settings` from ``environ`` (default ``os.environ``)."""
    env = os.environ if environ is None else environ
    base = Settings()
    wiring = radio_config.load(env)
    production = env.get("RADIO_GATE_PRODUCTION", "")
    alpha = float(env.get("RADIO_GATE_ALPHA", base.gate_alpha))
    if not 0 < alpha < 1:
        raise ValueError("RADIO_GATE_ALPHA must be between 0 and 1")
    return Settings(
        tracking_uri=wiring.tracking_uri,
        registry_root=wiring.registry_root,
        model_name=wiring.model_name,
        gate_data=_paths(env.get("RADIO_GATE_DATA", "")),
        gate_production=Path(production) if production else None,
        gate_alpha=alpha,
        events_log=Path(env.get("RADIO_LIFECYCLE_LOG") or base.events_log),
        health_url=env.get("RADIO_HEALTH_URL") or base.health_url,
    )
