"""Configuration of the web app, read from the environment once at start-up.

Every setting has a documented default (docs/api.md), so
``gunicorn app.platform.wsgi:app`` works with no environment at all on a developer machine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from radio_config import DEFAULT_DATA_DIR

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Config:
    """Settings of one app instance; field comments name the environment variable."""

    mlflow_url: str = "http://127.0.0.1:8000"  # MLFLOW_URL
    mlflow_timeout_s: float = 10.0  # MLFLOW_TIMEOUT_S: read timeout of one /invocations call
    connect_timeout_s: float = 2.0  # MLFLOW_CONNECT_TIMEOUT_S
    health_timeout_s: float = 2.0  # RADIO_HEALTH_TIMEOUT_S: /ping from /health
    max_upload_mb: float = 20.0  # RADIO_MAX_UPLOAD_MB
    data_dir: Path = DEFAULT_DATA_DIR  # RADIO_DATA_DIR (radio_config's default)
    pool_size: int = 8  # RADIO_POOL_SIZE: keep-alive connections per worker process
    log_level: str = "INFO"  # RADIO_LOG_LEVEL
    # Hostile clients and faults (docs/api.md, "Limits, timeouts and hostile input")
    body_timeout_s: float = 30.0  # RADIO_BODY_TIMEOUT_S: whole request body, else 408
    predict_slots: int = 10  # RADIO_PREDICT_SLOTS: /predict at once per worker, else 503
    decode_slots: int = 1  # RADIO_DECODE_SLOTS: image decodes at once per worker
    decode_wait_s: float = 20.0  # RADIO_DECODE_WAIT_S: wait for a decode slot, else 503
    breaker_failures: int = 3  # RADIO_BREAKER_FAILURES: model failures in a row that open it
    breaker_cooldown_s: float = 15.0  # RADIO_BREAKER_COOLDOWN_S: fail fast for this long
    health_token: str = ""  # RADIO_HEALTH_TOKEN: shows /health details off loopback
    min_free_mb: float = 500.0  # RADIO_MIN_FREE_MB: less free space in data_dir = unhealthy
    upload_max_age_days: float = 30.0  # RADIO_UPLOAD_MAX_AGE_DAYS: unreviewed images, then deleted
    uploads_max_mb: float = 2048.0  # RADIO_UPLOADS_MAX_MB: oldest unreviewed images go above it
    cleanup_interval_s: float = 600.0  # RADIO_CLEANUP_INTERVAL_S: 0 = only at start
    orphan_grace_s: float = 600.0  # RADIO_ORPHAN_GRACE_S: age before an orphan is removed
    # Accounts and the database (docs/clinical.md, "Accounts and roles").
    database_url: str = ""  # DATABASE_URL: empty = SQLite file <data_dir>/radio.db
    secret_key: str = ""  # RADIO_SECRET_KEY: empty = random, kept in <data_dir>/secret_key
    site: str = ""  # RADIO_SITE: the hospital or site recorded with each prediction
    cookie_secure: bool = False  # RADIO_COOKIE_SECURE: Secure cookies even over plain HTTP
    # The reverse proxy (nginx) whose X-Forwarded-For names the real client: comma-separated
    # addresses, the same setting gunicorn reads (app/platform/gunicorn.conf.py).
    forwarded_allow_ips: str = "127.0.0.1"  # FORWARDED_ALLOW_IPS
    image_store: str = ""  # RADIO_IMAGE_STORE: empty = <data_dir>/images; or s3://bucket/prefix
    # The model lifecycle's command line (docs/lifecycle.md): empty = this interpreter's
    # `python -m lifecycle`; it reads the registry settings from the same environment.
    lifecycle_cmd: str = ""  # RADIO_LIFECYCLE_CMD
    lifecycle_timeout_s: float = 60.0  # RADIO_LIFECYCLE_TIMEOUT_S: listing versions

    @property
    def max_upload_bytes(self) -> int:
        """Upload limit in bytes (MB = 2**20 bytes)."""
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def db_url(self) -> str:
        """DATABASE_URL, or the SQLite file under the data directory."""
        from app.store.db import default_url

        return self.database_url or default_url(self.data_dir)


# field name -> (environment variable, parser)
_ENV: dict[str, tuple[str, Any]] = {
    "mlflow_url": ("MLFLOW_URL", lambda v: v.rstrip("/")),
    "mlflow_timeout_s": ("MLFLOW_TIMEOUT_S", float),
    "connect_timeout_s": ("MLFLOW_CONNECT_TIMEOUT_S", float),
    "health_timeout_s": ("RADIO_HEALTH_TIMEOUT_S", float),
    "max_upload_mb": ("RADIO_MAX_UPLOAD_MB", float),
    "data_dir": ("RADIO_DATA_DIR", Path),
    "pool_size": ("RADIO_POOL_SIZE", int),
    "log_level": ("RADIO_LOG_LEVEL", str.upper),
    "body_timeout_s": ("RADIO_BODY_TIMEOUT_S", float),
    "predict_slots": ("RADIO_PREDICT_SLOTS", int),
    "decode_slots": ("RADIO_DECODE_SLOTS", int),
    "decode_wait_s": ("RADIO_DECODE_WAIT_S", float),
    "breaker_failures": ("RADIO_BREAKER_FAILURES", int),
    "breaker_cooldown_s": ("RADIO_BREAKER_COOLDOWN_S", float),
    "health_token": ("RADIO_HEALTH_TOKEN", str),
    "min_free_mb": ("RADIO_MIN_FREE_MB", float),
    "upload_max_age_days": ("RADIO_UPLOAD_MAX_AGE_DAYS", float),
    "uploads_max_mb": ("RADIO_UPLOADS_MAX_MB", float),
    "cleanup_interval_s": ("RADIO_CLEANUP_INTERVAL_S", float),
    "orphan_grace_s": ("RADIO_ORPHAN_GRACE_S", float),
    "database_url": ("DATABASE_URL", str),
    "secret_key": ("RADIO_SECRET_KEY", str),
    "site": ("RADIO_SITE", str),
    "forwarded_allow_ips": ("FORWARDED_ALLOW_IPS", str),
    "cookie_secure": ("RADIO_COOKIE_SECURE", lambda v: _flag("RADIO_COOKIE_SECURE", v)),
    "image_store": ("RADIO_IMAGE_STORE", str),
    "lifecycle_cmd": ("RADIO_LIFECYCLE_CMD", str),
    "lifecycle_timeout_s": ("RADIO_LIFECYCLE_TIMEOUT_S", float),
}


def _flag(var: str, raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{var} must be true or false")


def load_config(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Config:
    """Read :class:`Config` from ``environ`` (default ``os.environ``), then apply overrides.

    Raises ValueError naming the variable when a value does not parse, so a typo in a
    deployment fails at start-up instead of at the first upload.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, (var, parse) in _ENV.items():
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        try:
            values[name] = parse(raw)
        except ValueError as exc:
            raise ValueError(f"{var}={raw!r} is not valid: {exc}") from exc
    cfg = replace(Config(), **values)
    if overrides:
        known = {f.name for f in fields(Config)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        cfg = replace(cfg, **overrides)
    if cfg.mlflow_timeout_s <= 0 or cfg.max_upload_mb <= 0:
        raise ValueError("MLFLOW_TIMEOUT_S and RADIO_MAX_UPLOAD_MB must be positive")
    for name in ("body_timeout_s", "predict_slots", "decode_slots", "breaker_failures"):
        if getattr(cfg, name) <= 0:
            raise ValueError(f"{_ENV[name][0]} must be positive")
    return replace(cfg, data_dir=Path(cfg.data_dir), mlflow_url=cfg.mlflow_url.rstrip("/"))
