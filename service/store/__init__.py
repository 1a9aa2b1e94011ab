"""The SQLAlchemy store: cards issued, feedback, the JWT replay cache; see docs/store.md."""
from .store import (FeedbackItem, Override, PurgeResult, Store, SuppressedCard, database_url,
                    open_store)

__all__ = ["FeedbackItem", "Override", "PurgeResult", "Store", "SuppressedCard", "database_url",
           "open_store"]
