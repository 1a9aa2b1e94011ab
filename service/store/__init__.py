"""The SQLAlchemy store: cards issued, feedback, the JWT replay cache; see docs/store.md."""
from .store import FeedbackItem, PurgeResult, Store, database_url, open_store

__all__ = ["FeedbackItem", "PurgeResult", "Store", "database_url", "open_store"]
