"""The database as the game sees it: ``Conn`` (what every service receives), its errors, and the
lock registry (``core.db.locks``)."""

from core.db.raw import Conn, DatabaseError, Refused, UniqueViolation

__all__ = ["Conn", "DatabaseError", "Refused", "UniqueViolation"]
