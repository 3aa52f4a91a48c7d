"""What a failing store says: its database's own errors, on one line, and no logged traceback
of an error that is raised anyway."""

from __future__ import annotations

import logging
import re

from sqlalchemy.exc import SQLAlchemyError

# the line of a SQLAlchemy error that names the database's own complaint, e.g.
# "(sqlite3.OperationalError) database or disk is full"; MLflow may put a note above it
_DB_ERROR_LINE = re.compile(r"^\((?:[\w]+\.)*\w+\) \S")


def first_line(error: BaseException) -> str:
    """An exception's message on one line: SQLAlchemy's carry the SQL and a link below it, and
    MLflow may put an autoflush note above the database's own complaint, which wins."""
    lines = str(error).strip().splitlines()
    named = [line for line in lines if _DB_ERROR_LINE.match(line)]
    return (named or lines or [type(error).__name__])[0]


def is_store_error(error: BaseException | None) -> bool:
    """Whether `error` came from the store's database (a database that is full, read-only,
    locked or damaged): a SQLAlchemy error, or an MLflow error raised from one. MLflow's errors
    about what the caller asked (a param changed, a value too long) are not."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, SQLAlchemyError):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


class _RaisedAnyway(logging.Filter):
    """Drops MLflow's logged traceback of a database error it raises right after: the caller
    reports that error in one line (a full or read-only store)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("SQLAlchemy database error.")


_QUIET = _RaisedAnyway()


def quiet_db_error_logs() -> None:
    """MLflow's SQLAlchemy store stops logging the tracebacks of errors it raises (idempotent:
    a logger's filters are a set)."""
    logging.getLogger("mlflow.store.db.utils").addFilter(_QUIET)
