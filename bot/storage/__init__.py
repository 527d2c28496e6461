"""Persistence: SQLAlchemy models, the engine and repositories (which never commit)."""
