"""The project root for the monitoring tests (a module, so tests import it by name)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
