"""The schema revision this sluice writes, apart from the tables so that reading it
needs no SQLAlchemy (sluice.db.read compares it with a SQLite file's own)."""

from __future__ import annotations

SCHEMA_REVISION = "0004_remote_jobs"
