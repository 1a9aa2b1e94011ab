"""Alembic migration scripts; shipped inside the package and applied by open_store."""
