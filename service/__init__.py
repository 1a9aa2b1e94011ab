"""baclofen-cds: the CDS Hooks protocol around the clinical engine in `cards`."""
from .app import create_app

__all__ = ["create_app"]
