"""The patient's page in a real browser: the link of a message, confirm, reschedule, cancel.

Headless Debian chromium driven by Playwright (scripts/install-browser.sh installs both; no
Playwright browser download), with JavaScript off, as the page promises to work without it,
on a phone-sized screen. The doctor works every hour of every day, with no notice and a year
ahead, so the test holds on any date. It screenshots the page right after a reschedule; with
CITAS_UPDATE_SCREENSHOT=1 that picture replaces docs/patient-page.png (the README's), so an
ordinary run never dirties the tree. Without chromium or playwright it skips, saying which is
missing.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from .conftest import REPO_ROOT, Api, RunningServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, ViewportSize

pytestmark = pytest.mark.timeout(180)

LIMA = ZoneInfo("America/Lima")
SCREENSHOT = REPO_ROOT / "docs" / "patient-page.png"
UPDATE_SCREENSHOT = os.environ.get("CITAS_UPDATE_SCREENSHOT") == "1"
PHONE: ViewportSize = {"width": 390, "height": 844}
NARROW: ViewportSize = {"width": 360, "height": 740}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
DOCTOR_NAME = "Dra. Lucía Ramírez"
TAP_PX = 44


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless system chromium; skips when it or playwright is not installed."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip(
            "chromium is not on the PATH: scripts/install-browser.sh installs Debian's"
            " package when run as root (make test runs it)"
        )
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is not installed in this venv"
    )
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def _doctor(api: Api) -> str:
    doctor_id = f"e2e-page-{uuid.uuid4().hex[:10]}"
    body = {
        "name": DOCTOR_NAME,
        "country": "PE",
        "slot_minutes": 30,
        "working_hours": ALL_DAY,
        "min_notice_minutes": 0,
        "booking_horizon_days": 365,
        "works_on_holidays": True,
    }
    reply = api.put(f"/doctors/{doctor_id}", json=body)
    assert reply.status_code == 201, reply.text
    return doctor_id


def _book(api: Api, doctor_id: str) -> dict[str, Any]:
    day = (datetime.now(LIMA) + timedelta(days=3)).date()
    start = f"{day.isoformat()}T10:00:00-05:00"
    patient = {"name": "Ana Pérez", "phone": f"+5198{uuid.uuid4().int % 10**7:07d}"}
    reply = api.post(
        "/appointments", json={"doctor_id": doctor_id, "patient": patient, "start": start}
    )
    assert reply.status_code == 201, reply.text
    booked: dict[str, Any] = reply.json()
    return booked


def _link(server: RunningServer, appointment_id: str) -> str:
    """The link of the first message printed for `appointment_id` (the relay is async)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for line in server.stdout_lines():
            if not line.startswith("{") or '"notification"' not in line:
                continue
            note = json.loads(line)
            if note.get("appointment_id") == appointment_id and note.get("link"):
                link: str = note["link"]
                assert note["text"].rstrip().endswith(link), note["text"]
                return link
        time.sleep(0.1)
    pytest.fail(f"no notification with a link for {appointment_id} on the server's stdout")


def _tampered(link: str) -> str:
    """`link` with one character of its token changed: a forged token."""
    base, token = link.rsplit("/", 1)
    # Not the last character: in base64 its low bits may be padding that decodes the same.
    at = next(i for i in range(len(token) // 2, len(token)) if token[i].isalnum())
    swapped = "B" if token[at] == "A" else "A"
    return f"{base}/{token[:at]}{swapped}{token[at + 1 :]}"


def _appointment(api: Api, appointment_id: str) -> dict[str, Any]:
    reply = api.get(f"/appointments/{appointment_id}")
    assert reply.status_code == 200, reply.text
    found: dict[str, Any] = reply.json()
    return found


def _status_badge(page: Page) -> str:
    return page.locator(".status").inner_text().strip()


def _submit(page: Page, action: str) -> None:
    """Press the submit button of the form posting to `.../{action}`; wait for the answer."""
    with page.expect_navigation():
        page.locator(f'form[action$="/{action}"] button[type="submit"]').click()


def _check_layout(page: Page) -> None:
    """Fits the phone's width without sideways scrolling; every button is big enough to tap."""
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"page scrolls sideways: {width}"
    for button in page.locator("button, summary, .slot label").all():
        if button.is_visible():
            box = button.bounding_box()
            assert box is not None and box["height"] >= TAP_PX, (button.inner_text(), box)


def test_a_patient_confirms_reschedules_and_cancels_from_the_link(
    browser: Browser, server: RunningServer, api: Api
) -> None:
    doctor_id = _doctor(api)
    booked = _book(api, doctor_id)
    appointment_id = booked["appointment_id"]
    link = _link(server, appointment_id)

    # JavaScript off: the page is plain HTML forms and <details>.
    context = browser.new_context(viewport=PHONE, java_script_enabled=False, locale="es-PE")
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = context.new_page()
    try:
        opened = page.goto(link)
        assert opened is not None and opened.status == 200
        assert page.locator("html").get_attribute("lang") == "es"
        assert DOCTOR_NAME in page.locator("main").inner_text()
        assert _status_badge(page) == "Por confirmar"
        _check_layout(page)

        _submit(page, "confirmar")
        assert _status_badge(page) == "Confirmada"
        assert page.get_by_role("status").is_visible()
        assert _appointment(api, appointment_id)["status"] == "confirmed"
        assert page.locator('form[action$="/confirmar"]').count() == 0

        page.locator("summary", has_text="Reprogramar").click()
        radios = page.locator('input[type="radio"][name="start"]')
        assert radios.count() > 0, "no free times offered"
        current = datetime.fromisoformat(booked["start"])
        choice = next(
            r
            for r in radios.all()
            if datetime.fromisoformat(r.get_attribute("value") or "") != current
        )
        new_start = choice.get_attribute("value") or ""
        # The patient taps the time (its label), as on a phone.
        page.locator(f'label[for="{choice.get_attribute("id")}"]').click()
        assert choice.is_checked()
        _submit(page, "reprogramar")
        moved = _appointment(api, appointment_id)
        assert datetime.fromisoformat(moved["start"]) == datetime.fromisoformat(new_start)
        assert moved["status"] == "requested"
        assert _status_badge(page) == "Por confirmar"
        _check_layout(page)
        picture = page.screenshot(full_page=True)
        assert picture.startswith(b"\x89PNG") and len(picture) > 10_000
        if UPDATE_SCREENSHOT:
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            SCREENSHOT.write_bytes(picture)

        page.set_viewport_size(NARROW)
        _check_layout(page)

        _submit(page, "cancelar")
        assert _appointment(api, appointment_id)["status"] == "cancelled"
        assert _status_badge(page) == "Cancelada"
        assert page.locator("button").count() == 0
        assert page.locator("form").count() == 0
    finally:
        context.close()
    # Nothing but the server: no fonts, scripts or trackers from elsewhere.
    outside = [url for url in requested if not url.startswith(server.base_url)]
    assert outside == []


def test_a_tampered_link_is_a_plain_not_found_page(
    browser: Browser, server: RunningServer, api: Api
) -> None:
    booked = _book(api, _doctor(api))
    link = _link(server, booked["appointment_id"])
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    try:
        tampered = _tampered(link)
        answered = page.goto(tampered)
        assert answered is not None and answered.status == 404
        text = page.locator("body").inner_text()
        assert "Este enlace no es válido." in text
        assert DOCTOR_NAME not in text and "cita" not in text.lower()
        assert page.locator("form").count() == 0
    finally:
        context.close()
