"""The countries citas serves: configuration data, not code."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from attrs import field, frozen

from domain.errors import ValidationError
from domain.text import matches, pattern

# Adding a country (CO, MX, AR, ...) is one entry here or in the configuration passed to
# `CountryCatalog.from_mapping`; no other code changes.
DEFAULT_TIME_ZONES: Mapping[str, str] = {
    "PE": "America/Lima",
    "CL": "America/Santiago",
}


# The shape of an IANA key (`America/Lima`, `Etc/GMT+5`, `America/Port-au-Prince`): it keeps
# paths, dots and the database's own files (`zone.tab`, `tzdata.zi`) away from the loader.
_ZONE_KEY = pattern(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z][A-Za-z0-9_+-]*)*")
MAX_ZONE_LENGTH = 64
COUNTRY_CODE = pattern(r"[A-Z]{2}")


def load_zone(name: str) -> ZoneInfo:
    """Return the IANA zone `name`, or raise ValidationError unless it loads as a zone."""
    if not matches(_ZONE_KEY, name) or len(name) > MAX_ZONE_LENGTH:
        raise ValidationError("time_zone is not an IANA time zone name", field="time_zone")
    try:
        return ZoneInfo(name)
    # A directory of the database (`America`) is IsADirectoryError (an OSError) when the zones
    # come from the tzdata package, ZoneInfoNotFoundError when they come from the system;
    # a file that is not a zone is ValueError. None of them is a zone.
    except (ZoneInfoNotFoundError, ValueError, OSError) as e:
        raise ValidationError(f"unknown time zone {name!r}", field="time_zone") from e


@frozen
class CountryCatalog:
    """The configured countries and the default time zone of each."""

    time_zones: Mapping[str, str] = field(factory=lambda: dict(DEFAULT_TIME_ZONES))

    @classmethod
    def from_mapping(cls, time_zones: Mapping[str, str]) -> CountryCatalog:
        """Build a catalog, checking each country code and zone."""
        for code, zone in time_zones.items():
            if not matches(COUNTRY_CODE, code):
                raise ValueError(f"country codes are ISO 3166 alpha-2, got {code!r}")
            load_zone(zone)
        return cls(dict(time_zones))

    def __contains__(self, code: object) -> bool:
        return code in self.time_zones

    def __iter__(self) -> Iterator[str]:
        return iter(self.time_zones)

    def default_zone(self, country: str) -> str:
        """Return the default IANA zone of `country`, or raise ValidationError."""
        self.require(country)
        return self.time_zones[country]

    def require(self, country: str) -> None:
        """Raise ValidationError unless `country` is configured."""
        if country not in self.time_zones:
            raise ValidationError(
                f"country {country!r} is not served; configured: {sorted(self.time_zones)}",
                field="country",
            )
