"""The countries citas serves: configuration data, not code."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from attrs import field, frozen

from domain.errors import ValidationError

# Adding a country (CO, MX, AR, ...) is one entry here or in the configuration passed to
# `CountryCatalog.from_mapping`; no other code changes.
DEFAULT_TIME_ZONES: Mapping[str, str] = {
    "PE": "America/Lima",
    "CL": "America/Santiago",
}


def load_zone(name: str) -> ZoneInfo:
    """Return the IANA zone `name`, or raise ValidationError if it does not exist."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValidationError(f"unknown time zone {name!r}", field="time_zone") from e


@frozen
class CountryCatalog:
    """The configured countries and the default time zone of each."""

    time_zones: Mapping[str, str] = field(factory=lambda: dict(DEFAULT_TIME_ZONES))

    @classmethod
    def from_mapping(cls, time_zones: Mapping[str, str]) -> CountryCatalog:
        """Build a catalog, checking each country code and zone."""
        for code, zone in time_zones.items():
            if len(code) != 2 or not code.isalpha() or not code.isupper():
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
