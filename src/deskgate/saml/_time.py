"""xs:dateTime parsing and human durations (internal).

python3-saml's ``parse_SAML_to_time`` returns whole-second POSIX ints and
ignores time-zone offsets; we keep full precision (to the microsecond) and
honour offsets, because we compare against the caller's ``now`` ourselves.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta

# ASCII digits only: int() would take any Unicode digit.
_XS_DATETIME = re.compile(
    r"^(-?\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})"
    r"(?:\.(\d+))?"
    r"(Z|[+-]\d{2}:\d{2})?$",
    re.ASCII,
)


def require_utc_aware(now: datetime, name: str = "now") -> datetime:
    """Return ``now`` in UTC; refuse naive datetimes (they hide clock bugs)."""
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime (UTC)")
    return now.astimezone(UTC)


@functools.lru_cache(maxsize=1024)
def parse_xs_datetime(value: str) -> datetime:
    """Parse a SAML time (xs:dateTime) into a UTC-aware datetime.

    SAML requires UTC; a missing zone is read as UTC, ``Z`` and ``+hh:mm``
    offsets are honoured, fractions beyond microseconds are truncated.
    Cached (datetimes are immutable): an assertion repeats its instants
    (Conditions and SubjectConfirmationData NotOnOrAfter, IssueInstant).

    Raises:
        ValueError: not an xs:dateTime we understand.
    """
    match = _XS_DATETIME.match(value.strip())
    if not match:
        raise ValueError(f"not an xs:dateTime: {value!r}")
    year, month, day, hour, minute, second, fraction, tz = match.groups()
    moment = datetime(
        int(year),  # a negative or five-digit year raises ValueError here
        int(month),
        int(day),
        int(hour),
        int(minute),
        int(second),
        int(fraction[:6].ljust(6, "0")) if fraction else 0,
        tzinfo=UTC,
    )
    if tz is None or tz == "Z":
        return moment
    sign = 1 if tz[0] == "+" else -1
    return moment - sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))


def format_instant(moment: datetime) -> str:
    """``2024-05-20T21:10:42Z`` (UTC, whole seconds) for messages and documents."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def humanize(delta: timedelta) -> str:
    """Rough, readable magnitude of ``delta``: ``"45 seconds"``, ``"7 minutes"``, ``"3 days"``."""
    seconds = abs(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    count = int(seconds)
    return f"{count} second{'s' if count != 1 else ''}"
