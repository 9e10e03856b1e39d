"""Formatting dates with Joda-Time patterns, as Earth Engine's ``Date.format`` does.

Supported letters (repeat for width): ``y`` year (``yy`` two digits), ``M`` month
(``MMM`` short name, ``MMMM`` full name), ``d`` day of month, ``D`` day of year,
``H`` hour 0-23, ``h`` hour 1-12, ``m`` minute, ``s`` second, ``S`` fraction of a
second, ``E`` weekday (``EEE`` short, ``EEEE`` full), ``a`` AM/PM, ``Z`` zone offset
(``+0000``; ``ZZ`` ``+00:00``), ``w`` week of the week year, ``x`` week year. Text in
single quotes is literal (``''`` is a quote). Other letters are an error.
"""

from __future__ import annotations

import datetime as dt

DEFAULT_PATTERN = "yyyy-MM-dd'T'HH:mm:ss"  # Date.format() without a pattern
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")  # fmt: skip
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def format_date(moment: dt.datetime, pattern: str) -> str:
    """``moment`` formatted by the Joda-Time ``pattern``; ValueError naming an unsupported letter."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "'":
            end = pattern.find("'", i + 1)
            if end == i + 1:  # '' is a literal quote
                out.append("'")
                i += 2
                continue
            if end < 0:
                raise ValueError(f"Unterminated quote in date pattern {pattern!r}")
            out.append(pattern[i + 1 : end])
            i = end + 1
            continue
        if not char.isalpha():
            out.append(char)
            i += 1
            continue
        run = 1
        while i + run < len(pattern) and pattern[i + run] == char:
            run += 1
        out.append(_field(moment, char, run, pattern))
        i += run
    return "".join(out)


def _field(moment: dt.datetime, letter: str, width: int, pattern: str) -> str:
    if letter == "y":
        return f"{moment.year % 100:02d}" if width == 2 else f"{moment.year:0{width}d}"
    if letter == "x":
        year = moment.isocalendar()[0]
        return f"{year % 100:02d}" if width == 2 else f"{year:0{width}d}"
    if letter == "M":
        if width >= 4:
            return _MONTHS[moment.month - 1]
        if width == 3:
            return _MONTHS[moment.month - 1][:3]
        return f"{moment.month:0{width}d}"
    if letter == "E":
        name = _DAYS[moment.weekday()]
        return name if width >= 4 else name[:3]
    if letter == "a":
        return "AM" if moment.hour < 12 else "PM"
    if letter == "S":
        return f"{moment.microsecond:06d}"[:width].ljust(width, "0")
    if letter == "Z":
        offset = moment.utcoffset() or dt.timedelta(0)
        minutes = int(offset.total_seconds()) // 60
        sign = "-" if minutes < 0 else "+"
        hours, minutes = divmod(abs(minutes), 60)
        return f"{sign}{hours:02d}:{minutes:02d}" if width == 2 else f"{sign}{hours:02d}{minutes:02d}"
    numbers = {
        "d": moment.day,
        "D": moment.timetuple().tm_yday,
        "H": moment.hour,
        "h": (moment.hour % 12) or 12,
        "m": moment.minute,
        "s": moment.second,
        "w": moment.isocalendar()[1],
    }
    if letter not in numbers:
        raise ValueError(
            f"Unsupported letter {letter!r} in date pattern {pattern!r}; supported: y x M d D H h m s S E a Z w "
            "(quote literal text with ')"
        )
    return f"{numbers[letter]:0{width}d}"
