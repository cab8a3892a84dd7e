"""Helpers of the lifecycle tests (no test logic here)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from lifecycle.settings import Settings


def settings_for(registry: Path, tmp: Path, **extra) -> Settings:
    """Lifecycle settings on a registry folder (artefact paths relative to its parent)."""
    base = Settings(tracking_uri=f"sqlite:///{Path(registry).resolve() / 'mlflow.db'}",
                    registry_root=Path(registry).resolve().parent,
                    events_log=tmp / "events.jsonl")
    return replace(base, **extra)
