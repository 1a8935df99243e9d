"""Which failures are worth another try: the database or Redis unreachable, restarting or busy.

One classification for the whole stack: the event worker retries these with backoff instead of
giving the event up, and the APIs answer them with 503 and ``Retry-After`` instead of a 500.
Pure: it only looks at the exception (and what it wraps).
"""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import redis.exceptions
from sqlalchemy import exc as sa_exc


class TransientError(Exception):
    """Raised by a handler for a failure worth retrying later (a peer down, a timeout)."""


# SQLSTATE classes and codes a later attempt may not meet: connection exceptions (08…), too many
# connections / out of resources (53…), the server shutting down, crashed or starting up (57P01
# admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now), a serialization failure or a
# deadlock (40001, 40P01), a lock not available (55P03), a statement cancelled (57014).
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "53"})
TRANSIENT_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "40001", "40P01", "55P03", "57014"})
# What the server says when the SQLSTATE is lost on the way (asyncpg's own connection errors).
TRANSIENT_MESSAGES = (
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "terminating connection due to administrator command",
    "connection was closed in the middle of operation",
    "connection is closed",
    "connection refused",
    "database is locked",
)

_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    TransientError,
    ConnectionError,  # ConnectionRefusedError, ConnectionResetError, BrokenPipeError
    TimeoutError,  # asyncio.TimeoutError too
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,  # the connection pool's wait ran out
    sa_exc.DisconnectionError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, crash shutdown
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections
    asyncpg.exceptions.InterfaceError,  # the connection closed under us
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    redis.exceptions.ConnectionError,  # also BusyLoadingError (Redis loading its data)
    redis.exceptions.TimeoutError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ReadOnlyError,  # a replica promoted, or a failover under way
)


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error``, the driver error SQLAlchemy wraps (``.orig``) and every explicit cause, once each."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        pending += [orig if isinstance(orig, BaseException) else None, current.__cause__]


def _sqlstate(error: BaseException) -> str | None:
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return state if isinstance(state, str) else None


def is_transient(error: BaseException) -> bool:
    """True when a later attempt may succeed: connection loss, the database or Redis down or
    restarting, pool or lock timeouts, serialization failures, a peer down (``TransientError``)."""
    for part in _chain(error):
        if isinstance(part, _TRANSIENT_TYPES):
            return True
        if type(part) is OSError:  # network unreachable, host down (not a missing file)
            return True
        if isinstance(part, sa_exc.DBAPIError) and part.connection_invalidated:
            return True
        state = _sqlstate(part)
        if state is not None and (state[:2] in TRANSIENT_SQLSTATE_CLASSES or state in TRANSIENT_SQLSTATES):
            return True
        message = str(part).lower()
        if isinstance(part, sa_exc.DBAPIError | asyncpg.PostgresError) and any(
            text in message for text in TRANSIENT_MESSAGES
        ):
            return True
    return False
