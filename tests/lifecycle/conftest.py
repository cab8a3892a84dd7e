"""Fixtures for the lifecycle tests: scratch registries (the shipped one is never written)."""

from __future__ import annotations

import shutil

import pytest
from helpers import ROOT
from lifecycle_helpers import settings_for

from lifecycle.settings import Settings


@pytest.fixture
def bare_registry(tmp_path) -> Settings:
    """A new SQLite registry with versions 1-3 of radio-cxr (no artefacts), 2 in production.

    Alias and tag operations never read artefacts, so these tests need no model.
    """
    from lifecycle.model_versions import client

    s = settings_for(tmp_path / "reg", tmp_path)
    (tmp_path / "reg").mkdir()
    cl = client(s.tracking_uri)
    cl.create_registered_model(s.model_name)
    for v in (1, 2, 3):
        cl.create_model_version(s.model_name, str(tmp_path / f"m{v}"),
                                tags={"parent_version": str(v - 1) if v > 1 else "none"})
    cl.set_registered_model_alias(s.model_name, "production", "2")
    return s


@pytest.fixture
def shipped_copy(tmp_path) -> Settings:
    """A scratch copy of the shipped registry (mlflow/), with the real models."""
    shutil.copytree(ROOT / "mlflow", tmp_path / "mlflow", ignore=shutil.ignore_patterns("*.sh"))
    return settings_for(tmp_path / "mlflow", tmp_path)

