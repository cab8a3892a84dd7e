"""Alembic environment of Radio: runs migrations on the URL or connection it is given.

``app.store.db.migrate`` passes an open connection (under a lock); the ``alembic`` command line
(``alembic.ini`` at the project root) passes ``DATABASE_URL`` or the default SQLite file.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from app.store.db.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from app.platform.config import load_config
    from app.store.db import default_url

    return os.environ.get("DATABASE_URL") or default_url(load_config().data_dir)


def run() -> None:
    """Run the migrations online (Radio never generates SQL scripts offline)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    from app.store.db import get_engine

    url = _url()
    engine = get_engine(url) if url.startswith("sqlite") else create_engine(url)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata,
                          render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
