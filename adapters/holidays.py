"""National public holidays from the `holidays` library (ports/holidays.py's HolidayCalendar).

Which days a country rests changes by law, sometimes with a year's notice (Peru's 23 July and
7 June arrived that way), so the calendar comes from a maintained library, python-holidays,
and not from tables of our own. Only this adapter imports it: the domain sees the port, a
mapping of dates to names, and never the library.

The library is imported on first use, not with this module: `import holidays` costs about
100 ms (its version lookup through importlib.metadata, dateutil), which every Lambda cold start
would pay even when no handler asks for a holiday; the country's own module loads on demand.

Names are the library's Spanish ("es") ones. A country the library has no Spanish names for
(BR, US) gets its names in the library's default language for that country.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import date
from types import MappingProxyType

from domain.errors import ValidationError

# ISO 3166 alpha-2, as the port promises: the library also knows alpha-3 codes (PER) and
# aliases (UK), which would be second cache entries for one country.
_COUNTRY_LENGTH = 2
_LANGUAGE = "es"

# One per process, shared by every instance: a calendar never changes while the process runs
# (it depends on the installed library only), so a Lambda container computes each
# (country, year) once, whichever composition root built the adapter.
_cache: dict[tuple[str, int], Mapping[date, str]] = {}
_lock = threading.Lock()


def _is_country_code(country: object) -> bool:
    return (
        isinstance(country, str)
        and len(country) == _COUNTRY_LENGTH
        and country.isascii()
        and country.isalpha()
        and country.isupper()
    )


def _unknown(country: str) -> ValidationError:
    return ValidationError(f"no holiday calendar for country {country!r}", field="country")


def _load(country: str, year: int) -> Mapping[date, str]:
    import holidays  # on first use only: see the module docstring

    try:
        # National holidays only (no subdiv), of the default (public) category. The library
        # already joins several names of one date with "; ", as the port asks.
        calendar = holidays.country_holidays(country, years=year, language=_LANGUAGE)
    except NotImplementedError as e:  # what the library raises for a country it does not know
        raise _unknown(country) from e
    # A plain copy: the library's own mapping grows a year on any lookup outside `year`.
    return MappingProxyType({day: str(name) for day, name in sorted(calendar.items())})


class LibraryHolidayCalendar:
    """HolidayCalendar over python-holidays: national public holidays, Spanish names."""

    def holidays(self, country: str, year: int) -> Mapping[date, str]:
        """The national public holidays of `country` in `year`, as a read-only mapping."""
        if not _is_country_code(country):
            raise _unknown(country)
        key = (country, year)
        with _lock:
            found = _cache.get(key)
            if found is None:
                # Computed under the lock: each (country, year) once, and one mapping for all.
                found = _cache[key] = _load(country, year)
            return found
