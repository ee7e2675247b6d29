"""Alembic environment: run by :func:`analyzer.store.db.upgrade` (no alembic.ini).

The caller passes an open SQLAlchemy connection in
``config.attributes["connection"]``.
"""
from alembic import context

from analyzer.store.models import Base

config = context.config
connection = config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite",
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
