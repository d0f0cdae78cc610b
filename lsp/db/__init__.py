"""Persistence: SQLAlchemy 2 models, engine/session helpers, Alembic migrations."""
