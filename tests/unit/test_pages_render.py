"""The patient's page as HTML: Spanish, accessible, escaped, no script, readable colours."""

from __future__ import annotations

import ast
import fnmatch
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest

from entrypoints import pages
from entrypoints.pages import (
    CONTRAST_PAIRS,
    NON_TEXT_PAIRS,
    NOTICES,
    PALETTE,
    DayChoice,
    PageView,
    SlotChoice,
    render_appointment,
    render_error,
    render_expired,
    render_not_found,
)

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "tok_AbC-123"
HOSTILE = "<script>alert(1)</script>&\"'"
FOOTER = "Si tienes dudas, responde a este mensaje o llama a la clínica."
DAYS = (
    DayChoice(
        "lunes 7 de diciembre",
        (
            SlotChoice("2026-12-07T10:30:00-05:00", "10:30"),
            SlotChoice("2026-12-07T11:00:00-05:00", "11:00"),
        ),
    ),
    DayChoice("martes 8 de diciembre", (SlotChoice("2026-12-08T09:00:00-05:00", "09:00"),)),
)
VIEW = PageView(
    clinic_name="Clínica Sol",
    doctor_name="Dra. Rosa Quispe",
    when="lunes 7 de diciembre, 10:00 (hora de Lima)",
    status="requested",
    can_confirm=True,
    can_cancel=True,
    can_reschedule=True,
    days=DAYS,
    notice=None,
    token=TOKEN,
)


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""
    form: int | None = None  # index of the enclosing <form>
    fieldset: int | None = None


class Page(HTMLParser):
    """Every element with its attributes and text, and which form and fieldset hold it."""

    VOID = frozenset({"meta", "input", "br", "img", "link", "hr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._open: list[Element] = []
        self._forms = -1
        self._fieldsets = -1

    def handle_starttag(self, tag: str, attributes: list[tuple[str, str | None]]) -> None:
        if tag == "form":
            self._forms += 1
        if tag == "fieldset":
            self._fieldsets += 1
        in_form = any(e.tag == "form" for e in self._open) or tag == "form"
        in_fieldset = any(e.tag == "fieldset" for e in self._open) or tag == "fieldset"
        element = Element(
            tag,
            {k: v or "" for k, v in attributes},
            form=self._forms if in_form else None,
            fieldset=self._fieldsets if in_fieldset else None,
        )
        self.elements.append(element)
        if tag not in self.VOID:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop().tag == tag:
                break

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.text += data

    def all(self, tag: str) -> list[Element]:
        return [e for e in self.elements if e.tag == tag]

    def texts(self, tag: str) -> list[str]:
        return [" ".join(e.text.split()) for e in self.all(tag)]

    def body_text(self) -> str:
        (body,) = self.all("body")
        return " ".join(body.text.split())


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def view(**changes: Any) -> PageView:
    return attrs.evolve(VIEW, **changes)


ALL_PAGES = {
    "appointment": lambda: render_appointment(VIEW),
    "not_found": render_not_found,
    "expired": lambda: render_expired("Clínica Sol"),
    "expired_unknown_clinic": lambda: render_expired(None),
    "error": render_error,
}


# --- every page ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_PAGES)
def test_every_page_is_spanish_mobile_and_has_one_h1_and_the_footer(name: str) -> None:
    html = ALL_PAGES[name]()
    page = parse(html)
    assert html.startswith("<!doctype html>")
    (root,) = page.all("html")
    assert root.attrs["lang"] == "es"
    viewports = [m for m in page.all("meta") if m.attrs.get("name") == "viewport"]
    assert [m.attrs["content"] for m in viewports] == ["width=device-width, initial-scale=1"]
    assert any(m.attrs.get("charset") == "utf-8" for m in page.all("meta"))
    assert len(page.all("h1")) == 1
    assert page.texts("title") != [""]
    assert FOOTER in page.texts("footer")[0]


@pytest.mark.parametrize("name", ALL_PAGES)
def test_no_page_has_script_or_loads_anything(name: str) -> None:
    html = ALL_PAGES[name]()
    page = parse(html)
    for tag in ("script", "link", "img", "iframe", "object", "embed", "noscript"):
        assert page.all(tag) == [], tag
    assert not any(k.startswith("on") for e in page.elements for k in e.attrs)
    for element in page.elements:
        for key in ("src", "href"):
            assert key not in element.attrs, (element.tag, key)
    css = "".join(page.texts("style"))
    assert "url(" not in css and "@import" not in css and "@font-face" not in css
    assert "javascript:" not in html.lower()


# --- the appointment page ----------------------------------------------------------------------


def test_the_page_shows_clinic_doctor_time_and_status() -> None:
    page = parse(render_appointment(VIEW))
    assert page.texts("h1") == ["Clínica Sol"]
    text = page.body_text()
    assert "Dra. Rosa Quispe" in text
    assert "lunes 7 de diciembre, 10:00 (hora de Lima)" in text
    assert "Por confirmar" in text


def test_without_a_clinic_name_the_heading_is_tu_cita() -> None:
    page = parse(render_appointment(view(clinic_name="")))
    assert page.texts("h1") == ["Tu cita"]


@pytest.mark.parametrize(
    ("status", "label"),
    [
        ("requested", "Por confirmar"),
        ("confirmed", "Confirmada"),
        ("cancelled", "Cancelada"),
        ("completed", "Atendida"),
        ("no_show", "No asistió"),
    ],
)
def test_status_labels_are_spanish(status: str, label: str) -> None:
    page = parse(render_appointment(view(status=status)))
    (badge,) = [e for e in page.all("span") if "status" in e.attrs.get("class", "").split()]
    assert badge.text == label


def test_an_unknown_status_or_notice_is_refused_when_the_view_is_built() -> None:
    with pytest.raises(ValueError):
        view(status="pending")
    with pytest.raises(ValueError):
        view(notice="no_such_notice")


def test_forms_post_to_relative_actions_under_the_token() -> None:
    page = parse(render_appointment(VIEW))
    forms = page.all("form")
    assert [f.attrs["method"] for f in forms] == ["post"] * 3
    assert [f.attrs["action"] for f in forms] == [
        f"{TOKEN}/confirmar",
        f"{TOKEN}/reprogramar",
        f"{TOKEN}/cancelar",
    ]
    buttons = {b.text: b for b in page.all("button")}
    assert set(buttons) == {"Confirmar", "Reprogramar", "Cancelar"}
    assert all(b.attrs["type"] == "submit" and b.form is not None for b in buttons.values())
    assert forms[buttons["Confirmar"].form or 0].attrs["action"].endswith("/confirmar")
    assert forms[buttons["Cancelar"].form or 0].attrs["action"].endswith("/cancelar")


def test_the_reschedule_form_has_a_fieldset_per_day_and_a_labelled_radio_per_slot() -> None:
    page = parse(render_appointment(VIEW))
    (details,) = page.all("details")
    assert page.texts("summary") == ["Reprogramar"]
    assert "open" not in details.attrs
    assert page.texts("legend") == ["lunes 7 de diciembre", "martes 8 de diciembre"]
    radios = page.all("input")
    assert [r.attrs["type"] for r in radios] == ["radio"] * 3
    assert {r.attrs["name"] for r in radios} == {"start"}
    assert [r.attrs["value"] for r in radios] == [s.value for d in DAYS for s in d.slots]
    assert [r.fieldset for r in radios] == [0, 0, 1]
    assert all("required" in r.attrs for r in radios)
    (form,) = [f for f in page.all("form") if f.attrs["action"].endswith("/reprogramar")]
    index = page.all("form").index(form)
    assert {r.form for r in radios} == {index}
    labels = {label.attrs["for"]: label.text for label in page.all("label")}
    assert [labels[r.attrs["id"]] for r in radios] == ["10:30", "11:00", "09:00"]


def test_every_input_has_a_label_and_ids_are_unique() -> None:
    many = tuple(
        DayChoice(
            f"día {d}",
            tuple(SlotChoice(f"2026-12-{d:02}T{h:02}:00:00-05:00", f"{h}") for h in range(8, 18)),
        )
        for d in range(1, 8)
    )
    page = parse(render_appointment(view(days=many)))
    ids = [e.attrs["id"] for e in page.elements if "id" in e.attrs]
    assert len(ids) == len(set(ids))
    label_for = [label.attrs["for"] for label in page.all("label")]
    inputs = page.all("input")
    assert len(inputs) == 70
    for element in inputs + page.all("select") + page.all("textarea"):
        assert label_for.count(element.attrs["id"]) == 1, element.attrs


def test_no_free_times_says_so_and_offers_no_reschedule_submit() -> None:
    page = parse(render_appointment(view(days=())))
    assert page.all("input") == []
    assert [f.attrs["action"] for f in page.all("form")] == [
        f"{TOKEN}/confirmar",
        f"{TOKEN}/cancelar",
    ]
    assert "No hay horarios libres en los próximos días" in page.body_text()


@pytest.mark.parametrize("can_confirm", [True, False])
@pytest.mark.parametrize("can_cancel", [True, False])
@pytest.mark.parametrize("can_reschedule", [True, False])
def test_actions_appear_only_when_allowed(
    can_confirm: bool, can_cancel: bool, can_reschedule: bool
) -> None:
    page = parse(
        render_appointment(
            view(can_confirm=can_confirm, can_cancel=can_cancel, can_reschedule=can_reschedule)
        )
    )
    actions = {f.attrs["action"].rsplit("/", 1)[1] for f in page.all("form")}
    expected = {
        name
        for name, allowed in (
            ("confirmar", can_confirm),
            ("cancelar", can_cancel),
            ("reprogramar", can_reschedule),
        )
        if allowed
    }
    assert actions == expected
    assert bool(page.all("details")) == can_reschedule
    buttons = set(page.texts("button"))
    assert ("Confirmar" in buttons) == can_confirm
    assert ("Cancelar" in buttons) == can_cancel


def test_a_cancelled_appointment_has_no_actions() -> None:
    cancelled = view(
        status="cancelled",
        can_confirm=False,
        can_cancel=False,
        can_reschedule=False,
        notice="cancelada",
    )
    page = parse(render_appointment(cancelled))
    assert page.all("form") == [] and page.all("button") == [] and page.all("details") == []
    assert "Cancelada" in page.body_text()


def test_hostile_names_and_token_come_out_escaped() -> None:
    hostile = view(clinic_name=HOSTILE, doctor_name=HOSTILE, when=HOSTILE, token='a"b<c')
    html = render_appointment(hostile)
    page = parse(html)
    assert page.all("script") == []
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&amp;&#34;&#39;" in html
    # Parsed back, the names read as typed: escaped, not mangled.
    assert page.texts("h1") == [HOSTILE]
    assert page.body_text().count(HOSTILE) == 3
    assert page.all("form")[0].attrs["action"] == 'a"b<c/confirmar'


def test_hostile_slot_and_day_labels_come_out_escaped() -> None:
    days = (DayChoice(HOSTILE, (SlotChoice(HOSTILE, HOSTILE),)),)
    html = render_appointment(view(days=days))
    page = parse(html)
    assert "<script>" not in html and page.all("script") == []
    assert page.texts("legend") == [HOSTILE]
    assert page.all("input")[0].attrs["value"] == HOSTILE


@pytest.mark.parametrize("code", sorted(NOTICES))
def test_every_notice_is_a_status_message(code: str) -> None:
    page = parse(render_appointment(view(notice=code)))
    statuses = [e for e in page.elements if e.attrs.get("role") == "status"]
    assert [" ".join(e.text.split()) for e in statuses] == [NOTICES[code]]


def test_the_notices_the_routes_use_exist_in_spanish() -> None:
    wanted = {
        "confirmada",
        "cancelada",
        "reprogramada",
        "ya_confirmada",
        "slot_unavailable",
        "patient_double_booked",
        "invalid_transition",
        "start_in_past",
        "too_soon",
        "too_far",
        "outside_working_hours",
        "invalid_slot",
        "doctor_unavailable",
        "invalid_start",
        "temporarily_unavailable",
        "version_conflict",
    }
    assert wanted <= set(NOTICES)
    for code, sentence in NOTICES.items():
        # A sentence, never the code leaking through (`slot_unavailable`).
        assert sentence[0].isupper() or sentence[0] == "¡", code
        assert sentence[-1] in ".!" and "_" not in sentence, code
        # Tú, not usted: the clinics' patients are addressed as in their messages.
        assert " usted" not in sentence.lower(), code


def test_without_a_notice_there_is_no_status_message() -> None:
    page = parse(render_appointment(VIEW))
    assert not any(e.attrs.get("role") == "status" for e in page.elements)


def test_a_refused_time_reopens_the_list_and_a_success_does_not() -> None:
    refused = parse(render_appointment(view(notice="slot_unavailable")))
    assert "open" in refused.all("details")[0].attrs
    done = parse(render_appointment(view(notice="reprogramada")))
    assert "open" not in done.all("details")[0].attrs


# --- the other pages ---------------------------------------------------------------------------


def test_the_not_found_page_says_nothing_about_appointments() -> None:
    page = parse(render_not_found())
    assert page.texts("h1") == ["Este enlace no es válido."]
    text = (page.body_text() + " " + " ".join(page.texts("title"))).lower()
    for word in ("cita", "doctor", "dra.", "dr.", "profesional", "confirm", "cancel", "estado"):
        assert word not in text, word
    assert all(label.lower() not in text for label in pages.STATUS_LABELS.values())
    assert page.all("form") == []


def test_the_expired_page_says_the_link_expired_and_names_the_clinic_when_known() -> None:
    known = parse(render_expired("Clínica <Sol>"))
    assert known.texts("h1") == ["Este enlace ya venció"]
    assert "Clínica <Sol>" in known.body_text()
    assert "&lt;Sol&gt;" in render_expired("Clínica <Sol>")
    unknown = parse(render_expired(None))
    assert unknown.texts("h1") == ["Este enlace ya venció"]
    assert " en " not in unknown.body_text().split(".")[0]
    assert known.all("form") == [] and unknown.all("form") == []


def test_the_error_page_asks_to_try_again_later() -> None:
    page = parse(render_error())
    assert "Inténtalo de nuevo en unos minutos" in page.body_text()
    assert page.all("form") == []


# --- colours and sizes -----------------------------------------------------------------------


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_contrast_formula_matches_wcag() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


@pytest.mark.parametrize(("text", "background"), CONTRAST_PAIRS)
def test_text_colours_meet_wcag_aa(text: str, background: str) -> None:
    assert contrast(PALETTE[text], PALETTE[background]) >= 4.5


@pytest.mark.parametrize(("boundary", "background"), NON_TEXT_PAIRS)
def test_control_boundaries_meet_wcag_aa_non_text(boundary: str, background: str) -> None:
    assert contrast(PALETTE[boundary], PALETTE[background]) >= 3.0


def _css_rules(html: str) -> dict[str, dict[str, str]]:
    css = "".join(parse(html).texts("style"))
    rules: dict[str, dict[str, str]] = {}
    for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        declarations = (d.split(":", 1) for d in body.split(";") if ":" in d)
        rules.setdefault(selector.strip(), {}).update(
            {k.strip(): v.strip() for k, v in declarations}
        )
    return rules


def test_every_colour_comes_from_the_palette_and_every_text_pair_is_checked() -> None:
    for template in (ROOT / "entrypoints" / "templates").iterdir():
        source = template.read_text(encoding="utf-8")
        assert not re.search(r"#[0-9a-fA-F]{3,8}\b|rgb|hsl", source), template.name
    rules = _css_rules(render_appointment(view(notice="confirmada")))
    # Compared as colours, not names: two names may share one colour (white).
    checked = {(PALETTE[text], PALETTE[background]) for text, background in CONTRAST_PAIRS}
    on_page_or_card = {PALETTE["page"], PALETTE["card"]}
    assert rules["body"]["background"] == PALETTE["page"]
    colours = set(PALETTE.values())
    seen = 0
    for selector, declarations in rules.items():
        used = [v for k, v in declarations.items() if "color" in k or "background" in k]
        assert all(v.split()[-1] in colours for v in used if "#" in v), selector
        if "color" not in declarations:
            continue
        seen += 1
        text = declarations["color"]
        if "background" in declarations:
            assert (text, declarations["background"]) in checked, selector
        else:
            # A rule without a background of its own sits on a card or on the page.
            assert {(text, b) for b in on_page_or_card} <= checked, selector
    assert seen >= 10


def _rem(value: str) -> float:
    assert value.endswith("rem"), value
    return float(value.removesuffix("rem"))


def test_buttons_and_slots_are_large_enough_to_tap() -> None:
    rules = _css_rules(render_appointment(VIEW))
    # 1rem is 16px in every mobile browser's default; 44px is 2.75rem.
    assert _rem(rules[".button"]["min-height"]) >= 2.75
    assert rules[".button"]["width"] == "100%"
    assert _rem(rules[".slot label"]["min-height"]) >= 2.75
    assert "system-ui" in rules["body"]["font-family"]


# --- packaging and cold start ------------------------------------------------------------------


def test_importing_the_module_does_not_import_jinja2() -> None:
    code = "import sys, entrypoints.pages; print('jinja2' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == "False"


def test_no_other_entrypoint_module_imports_jinja2() -> None:
    for path in sorted((ROOT / "entrypoints").rglob("*.py")):
        if path.name == "pages.py" and path.parent.name == "entrypoints":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.split(".")[0] == "jinja2" for n in names), path


def test_the_templates_are_package_data() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = project["tool"]["setuptools"]["package-data"]["entrypoints"]
    for template in (ROOT / "entrypoints" / "templates").iterdir():
        relative = template.relative_to(ROOT / "entrypoints").as_posix()
        assert any(fnmatch.fnmatch(relative, p) for p in patterns), relative


def test_day_choices_group_slots_by_local_day_with_offsets() -> None:
    santiago = ZoneInfo("America/Santiago")
    first = datetime(2026, 12, 7, 23, 30, tzinfo=santiago)
    starts = [
        first + timedelta(minutes=30),
        first,
        datetime(2026, 12, 8, 13, 0, tzinfo=ZoneInfo("UTC")),
    ]
    days = pages.day_choices(starts, "America/Santiago")
    assert days == (
        DayChoice("lunes 7 de diciembre", (SlotChoice("2026-12-07T23:30:00-03:00", "23:30"),)),
        DayChoice(
            "martes 8 de diciembre",
            (
                SlotChoice("2026-12-08T00:00:00-03:00", "00:00"),
                SlotChoice("2026-12-08T10:00:00-03:00", "10:00"),
            ),
        ),
    )
