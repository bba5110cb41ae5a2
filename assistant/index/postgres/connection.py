"""Connecting to the index server, and what its failures mean to a user.

Credentials come only from the URL or libpq's own ``PGPASSWORD`` / ``~/.pgpass``; anything
written (the manifest, the local staging folder's name, messages) uses ``public_url``, the
URL with its password removed. A server that is down, a refused login and a missing
``psycopg`` are one-line errors, never tracebacks.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from assistant.errors import ServerError, SettingsError

if TYPE_CHECKING:
    import psycopg


def public_url(url: str) -> str:
    """The URL without its password (nor a ``password`` or ``sslpassword`` in the query);
    for a URL too broken to split, a placeholder (never the URL itself)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an unreadable URL)"
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        netloc = f"{user.split(':', 1)[0]}@{host}"
    query = "&".join(q for q in parts.query.split("&")
                     if q and not q.startswith(("password=", "sslpassword=")))
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


_QUERY_SECRET = re.compile(r"(?:^|[?&])(?:ssl)?password=([^&#]*)")


def redact(text: str, url: str) -> str:
    """``text`` (a driver's message) with every secret of ``url`` in it, as written or
    percent-decoded, replaced by ``***``: a driver may quote the token it could not read."""
    secrets = [m.group(1) for m in _QUERY_SECRET.finditer(url)]
    rest = url.split("://", 1)[-1]
    userinfo = rest.rsplit("@", 1)[0] if "@" in rest else ""
    if ":" in userinfo:
        secrets.append(userinfo.split(":", 1)[1])
    for secret in sorted({*secrets, *(unquote(s) for s in secrets)} - {""}, key=len,
                         reverse=True):
        text = text.replace(secret, "***")
    return text


def database_identity(url: str) -> str:
    """Which database a URL names (user, host, port, database), whatever its options."""
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(url)
    parts.setdefault("port", "5432")
    return "|".join(str(parts.get(k) or "") for k in ("user", "host", "port", "dbname"))


def check_url(url: str) -> None:
    """A ``SettingsError`` for a URL that is not a PostgreSQL URL or cannot be read (its
    message never quotes the URL's password, which the driver's own message would)."""
    try:
        scheme = urlsplit(url).scheme
    except ValueError as exc:  # "Invalid IPv6 URL": names no part of the URL
        raise SettingsError(f"the server URL cannot be read ({exc}); write it as "
                            "postgresql://user@host:5432/database") from exc
    if scheme not in ("postgresql", "postgres"):
        raise SettingsError(f"the server URL {public_url(url)!r} is not a PostgreSQL URL; "
                            "write it as postgresql://user@host:5432/database")
    try:
        from psycopg import ProgrammingError
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        return  # require_driver says what to install
    try:
        conninfo_to_dict(url)
    except ProgrammingError as exc:
        raise SettingsError(f"the server URL {public_url(url)} cannot be read "
                            f"({redact(' '.join(str(exc).split()), url)[:200]}); a % must "
                            "start an escape such as %40 (write a % itself as %25)") from exc


def require_driver() -> None:
    try:
        import psycopg  # noqa: F401  only for a server index
    except ImportError as exc:
        raise SettingsError("a PostgreSQL index needs psycopg; install it with "
                            "pip install 'briefing-assistant[postgres]'") from exc


@dataclass(frozen=True)
class Patience:
    """How long a reader waits for the server (settings ``server_timeout_s`` and
    ``server_retry_s``): for one statement or connection, and for a lost connection to come
    back."""

    timeout_s: float = 10.0
    retry_s: float = 30.0

    @property
    def connect_timeout(self) -> int:
        """libpq's ``connect_timeout``: whole seconds, at least 2 (libpq's own minimum)."""
        return max(2, math.ceil(self.timeout_s))


BUILDER = Patience(timeout_s=10.0, retry_s=0.0)
"""A build's connections: one attempt, no statement timeout (a publish may take minutes)."""


def connect(url: str, autocommit: bool = True, patience: Patience = BUILDER
            ) -> psycopg.Connection[Any]:
    """A connection, or a ``ServerError`` saying why there is none."""
    import psycopg

    try:
        return connect_raw(url, autocommit, patience)
    except psycopg.Error as exc:
        raise unreachable(url, exc) from exc


def connect_raw(url: str, autocommit: bool = True, patience: Patience = BUILDER
                ) -> psycopg.Connection[Any]:
    """A connection; psycopg's own error when there is none (for a caller that retries)."""
    check_url(url)
    require_driver()
    import psycopg

    return psycopg.connect(url, autocommit=autocommit,
                           connect_timeout=patience.connect_timeout,
                           application_name="briefing-assistant")


def refused(exc: Exception) -> bool:
    """A failure that waiting will not mend: a refused login, a database that is not there."""
    detail = " ".join(str(exc).split())
    return ("password authentication failed" in detail or "no password supplied" in detail
            or ("does not exist" in detail and "database" in detail))


def unreachable(url: str, exc: Exception) -> ServerError:
    """The error for a failed connection or a connection lost mid-question."""
    detail = redact(" ".join(str(exc).split()), url)
    if "password authentication failed" in detail or "no password supplied" in detail:
        reason = detail[detail.find("password"):] if "password" in detail else detail
        return ServerError(f"the index server {public_url(url)} refused the login "
                           f"({reason[:200]}); check the user and password in the URL, "
                           "PGPASSWORD or ~/.pgpass")
    if "does not exist" in detail and "database" in detail:
        return ServerError(f"the index server {public_url(url)} has no such database "
                           f"({detail[:200]}); create it or fix the URL")
    return ServerError(f"cannot reach the index server {public_url(url)} ({detail[:200]}); "
                       "check that it is running and that the URL is right, then try again")


def no_answer(url: str, patience: Patience) -> ServerError:
    """The error for a statement the server did not finish in time (frozen, overloaded)."""
    return ServerError(f"the index server {public_url(url)} did not answer within "
                       f"{patience.timeout_s:g} s (setting server_timeout_s); it may be frozen "
                       "or overloaded: check it, then try again")
