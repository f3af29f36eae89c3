"""LibraryHolidayCalendar on the real python-holidays library: no mocks.

The exact names are the library's Spanish ones at the version this venv holds (0.109); a
release that renames a holiday fails here, which is the point: the names reach patients.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from adapters.holidays import LibraryHolidayCalendar
from domain.errors import ValidationError
from ports.holidays import HolidayCalendar

ROOT = Path(__file__).resolve().parents[2]

PE_2026 = {
    date(2026, 1, 1): "Año Nuevo",
    date(2026, 4, 2): "Jueves Santo",
    date(2026, 4, 3): "Viernes Santo",
    date(2026, 4, 5): "Domingo de Resurrección",
    date(2026, 5, 1): "Día del Trabajo",
    date(2026, 6, 7): "Batalla de Arica y Día de la Bandera",
    date(2026, 6, 29): "San Pedro y San Pablo",
    date(2026, 7, 23): "Día de la Fuerza Aérea del Perú",
    date(2026, 7, 28): "Día de la Independencia",
    date(2026, 7, 29): "Día de la Gran Parada Militar",
    date(2026, 8, 6): "Batalla de Junín",
    date(2026, 8, 30): "Santa Rosa de Lima",
    date(2026, 10, 8): "Combate de Angamos",
    date(2026, 11, 1): "Todos Los Santos",
    date(2026, 12, 8): "Inmaculada Concepción",
    date(2026, 12, 9): "Batalla de Ayacucho",
    date(2026, 12, 25): "Navidad del Señor",
}
CL_2026 = {
    date(2026, 1, 1): "Año Nuevo",
    date(2026, 4, 3): "Viernes Santo",
    date(2026, 4, 4): "Sábado Santo",
    date(2026, 5, 1): "Día Nacional del Trabajo",
    date(2026, 5, 21): "Día de las Glorias Navales",
    date(2026, 6, 21): "Día Nacional de los Pueblos Indígenas",
    date(2026, 6, 29): "San Pedro y San Pablo",
    date(2026, 7, 16): "Virgen del Carmen",
    date(2026, 8, 15): "Asunción de la Virgen",
    date(2026, 9, 18): "Día de la Independencia",
    date(2026, 9, 19): "Día de las Glorias del Ejército",
    date(2026, 10, 12): "Día del Encuentro de dos Mundos",
    date(2026, 10, 31): "Día Nacional de las Iglesias Evangélicas y Protestantes",
    date(2026, 11, 1): "Día de Todos los Santos",
    date(2026, 12, 8): "La Inmaculada Concepción",
    date(2026, 12, 25): "Navidad",
}


@pytest.fixture
def calendar() -> LibraryHolidayCalendar:
    return LibraryHolidayCalendar()


def test_it_is_a_holiday_calendar_answering_a_read_only_mapping() -> None:
    port: HolidayCalendar = LibraryHolidayCalendar()
    found = port.holidays("PE", 2026)
    assert isinstance(found, Mapping) and isinstance(found, MappingProxyType)
    assert list(found) == sorted(found)


def test_peru_2026_has_fiestas_patrias_and_the_whole_national_list(
    calendar: LibraryHolidayCalendar,
) -> None:
    found = calendar.holidays("PE", 2026)
    assert found[date(2026, 7, 28)] == "Día de la Independencia"
    assert found[date(2026, 7, 29)] == "Día de la Gran Parada Militar"
    assert dict(found) == PE_2026


def test_chile_2026_has_fiestas_patrias_and_the_whole_national_list(
    calendar: LibraryHolidayCalendar,
) -> None:
    found = calendar.holidays("CL", 2026)
    assert found[date(2026, 9, 18)] == "Día de la Independencia"
    assert found[date(2026, 9, 19)] == "Día de las Glorias del Ejército"
    assert dict(found) == CL_2026


def test_new_year_is_a_holiday_in_both(calendar: LibraryHolidayCalendar) -> None:
    for country in ("PE", "CL"):
        assert calendar.holidays(country, 2026)[date(2026, 1, 1)] == "Año Nuevo"


def test_national_only_no_regional_or_bank_holidays(calendar: LibraryHolidayCalendar) -> None:
    # Arica y Parinacota's 7 June (a region's) and Chile's 31 December (banks') are not national.
    chile = calendar.holidays("CL", 2026)
    assert date(2026, 6, 7) not in chile
    assert date(2026, 12, 31) not in chile


def test_several_holidays_on_one_date_are_one_name_joined_by_semicolons(
    calendar: LibraryHolidayCalendar,
) -> None:
    # Colombia moves both to the same Monday in 2025.
    assert calendar.holidays("CO", 2025)[date(2025, 6, 30)] == (
        "Sagrado Corazón (observado); San Pedro y San Pablo (observado)"
    )


def test_every_date_is_in_the_year_asked_for(calendar: LibraryHolidayCalendar) -> None:
    for year in (2000, 2026, 2100):
        found = calendar.holidays("PE", year)
        assert found, year
        assert {day.year for day in found} == {year}
        assert all(isinstance(name, str) and name for name in found.values())


def test_far_years_work(calendar: LibraryHolidayCalendar) -> None:
    assert calendar.holidays("PE", 2000)[date(2000, 7, 28)] == "Día de la Independencia"
    assert calendar.holidays("CL", 2100)[date(2100, 9, 18)] == "Día de la Independencia"
    assert calendar.holidays("PE", 2100)[date(2100, 1, 1)] == "Año Nuevo"


@pytest.mark.parametrize("country", ["ZZ", "pe", "PER", "Pe", " PE", "", "P", "HolidayBase"])
def test_an_unknown_country_is_a_validation_error_on_country(
    calendar: LibraryHolidayCalendar, country: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        calendar.holidays(country, 2026)
    assert raised.value.details == {"field": "country"}
    assert raised.value.message == f"no holiday calendar for country {country!r}"


def test_one_country_and_year_is_computed_once_and_shared(
    calendar: LibraryHolidayCalendar,
) -> None:
    first = calendar.holidays("PE", 2031)
    assert calendar.holidays("PE", 2031) is first
    # One cache per process, whichever instance asks.
    assert LibraryHolidayCalendar().holidays("PE", 2031) is first
    assert calendar.holidays("PE", 2032) is not first
    assert calendar.holidays("CL", 2031) is not first


def test_callers_cannot_change_the_cached_calendar(calendar: LibraryHolidayCalendar) -> None:
    found: Any = calendar.holidays("PE", 2026)
    with pytest.raises(TypeError):
        found[date(2026, 3, 3)] = "Feriado inventado"
    with pytest.raises(TypeError):
        del found[date(2026, 1, 1)]
    with pytest.raises(AttributeError):
        found.pop(date(2026, 1, 1))
    # Looking up another year does not grow it (the library's own mapping would).
    assert date(2027, 1, 1) not in found
    assert found.get(date(2027, 1, 1)) is None
    assert dict(calendar.holidays("PE", 2026)) == PE_2026


def test_concurrent_first_calls_share_one_result(calendar: LibraryHolidayCalendar) -> None:
    keys = [(country, year) for country in ("PE", "CL", "MX", "AR") for year in (2040, 2041)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda key: calendar.holidays(*key), keys * 8))
    by_key: dict[tuple[str, int], set[int]] = {}
    for key, result in zip(keys * 8, results, strict=True):
        by_key.setdefault(key, set()).add(id(result))
    assert all(len(ids) == 1 for ids in by_key.values()), by_key
    assert results[0][date(2040, 7, 28)] == "Día de la Independencia"


def test_importing_the_adapter_does_not_import_the_library() -> None:
    # Lambda cold starts pay for `import holidays` only when a holiday is asked for.
    code = "import sys, adapters.holidays; print('holidays' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == "False"
