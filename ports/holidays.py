"""What the domain needs to know about national public holidays."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Protocol


class HolidayCalendar(Protocol):
    """The national public holidays citas applies, country by country."""

    def holidays(self, country: str, year: int) -> Mapping[date, str]:
        """The national public holidays of `country` (ISO 3166 alpha-2) in `year`.

        Local date → its Spanish name (several holidays on one date are one name joined by
        "; "). Raises ValidationError for a country the calendar does not know.
        """
        ...
