"""The service's data: short text notes."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import DateTime, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """The models' metadata, compared with the database by ``alembic revision --autogenerate``."""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)

    def to_dict(self) -> dict[str, Any]:
        created_at = self.created_at
        if created_at.tzinfo is None:
            # SQLite keeps no time zone; every value was written in UTC.
            created_at = created_at.replace(tzinfo=timezone.utc)
        return {"id": self.id, "text": self.text, "created_at": created_at.isoformat()}
