"""Six-field NCRONTAB schedules (``sec min hour day month day-of-week``), as used by timer triggers.

Each field accepts ``*``, numbers, ranges ``a-b``, lists ``a,b``, steps ``*/n`` / ``a-b/n`` / ``a/n``;
month and day-of-week also accept English names (``Jan``, ``Mon``); day-of-week 0 and 7 are Sunday.
Like cron, when both day-of-month and day-of-week are restricted a day matches if either does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

_MONTHS = {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}
_DAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
_RANGES = [(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def _value(text: str, idx: int) -> int:
    t = text.strip().lower()
    if idx == 4 and t[:3] in _MONTHS and not t.isdigit():
        return _MONTHS[t[:3]]
    if idx == 5 and t[:3] in _DAYS and not t.isdigit():
        return _DAYS[t[:3]]
    return int(t)


def _field(text: str, idx: int) -> tuple[frozenset[int], bool]:
    lo, hi = _RANGES[idx]
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_s = part.split("/", 1)
            step = int(step_s)
            if step <= 0:
                raise ValueError(f"bad step in {text!r}")
        if part == "*":
            a, b = lo, hi
        elif "-" in part:
            a_s, b_s = part.split("-", 1)
            a, b = _value(a_s, idx), _value(b_s, idx)
        else:
            a = _value(part, idx)
            b = hi if step != 1 else a
        if a < lo or b > hi or a > b:
            raise ValueError(f"value out of range in {text!r}")
        values.update(range(a, b + 1, step))
    if idx == 5 and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values), text.strip() == "*"


@dataclass(frozen=True)
class Schedule:
    """A parsed NCRONTAB expression."""

    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    def _day_ok(self, dt: datetime) -> bool:
        dom = dt.day in self.days
        dow = (dt.isoweekday() % 7) in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return dow
        if self.any_weekday:
            return dom
        return dom or dow

    def matches(self, dt: datetime) -> bool:
        """Whether the second ``dt`` is an occurrence."""
        return (
            dt.second in self.seconds
            and dt.minute in self.minutes
            and dt.hour in self.hours
            and dt.month in self.months
            and self._day_ok(dt)
        )

    def next_after(self, dt: datetime) -> datetime:
        """The first occurrence strictly after ``dt`` (same tzinfo)."""
        t = dt.replace(microsecond=0) + timedelta(seconds=1)
        limit = t + timedelta(days=366 * 5)
        while t < limit:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0, second=0) + timedelta(days=32)).replace(day=1)
                continue
            if not self._day_ok(t):
                t = t.replace(hour=0, minute=0, second=0) + timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = t.replace(minute=0, second=0) + timedelta(hours=1)
                continue
            if t.minute not in self.minutes:
                t = t.replace(second=0) + timedelta(minutes=1)
                continue
            if t.second not in self.seconds:
                t += timedelta(seconds=1)
                continue
            return t
        raise ValueError("schedule never fires")


def parse(expr: str) -> Schedule:
    """Parse a six-field NCRONTAB expression (five fields get a leading ``0`` seconds field)."""
    fields = expr.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        raise ValueError(f"NCRONTAB needs 6 fields: {expr!r}")
    parsed = [_field(f, i) for i, f in enumerate(fields)]
    return Schedule(
        parsed[0][0], parsed[1][0], parsed[2][0], parsed[3][0], parsed[4][0], parsed[5][0], parsed[3][1], parsed[5][1]
    )
