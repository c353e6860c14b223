"""Persistence: the only package that knows SQL (SQLAlchemy 2)."""

from app.store.repository import CallRecord, Store, UnknownCallError
from app.store.writer import StoreWriter

__all__ = ["CallRecord", "Store", "StoreWriter", "UnknownCallError"]
