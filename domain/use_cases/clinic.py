"""`Clinic`: one object for every use case of citas, for callers that want a single door.

Each concern lives in its own module (doctors, booking, lists, booking requests, reminders)
and shares one `Ports`; the facade only builds them and hands their methods out. Replacing a
port on the facade (`clinic.appointments = ...`, as tests of failures do) replaces it for
every use case at once.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Generic, TypeVar, overload

from domain.clinics import check_clinic_id
from domain.countries import CountryCatalog
from domain.pagination import PageTokens
from domain.use_cases.booking import BookingUseCases
from domain.use_cases.context import Ports
from domain.use_cases.doctors import DoctorUseCases
from domain.use_cases.lists import ListUseCases
from domain.use_cases.reminders import CadenceUseCases
from domain.use_cases.requests import BookingRequestUseCases
from domain.use_cases.waitlist import WaitlistUseCases
from domain.waitlist import DEFAULT_HOLD_MINUTES
from ports.holidays import HolidayCalendar
from ports.messaging import BookingRequestQueue
from ports.patients import PatientContacts
from ports.repositories import (
    AppointmentRepository,
    BookingRequestRepository,
    DoctorRepository,
    WaitlistRepository,
)
from ports.system import Clock, IdGenerator

T = TypeVar("T")


class NoHolidays:
    """A holiday calendar without holidays."""

    def holidays(self, country: str, year: int) -> dict[date, str]:
        """None, for every country and year."""
        return {}


class _Port(Generic[T]):
    """A facade attribute that reads and replaces one of the shared `Ports`."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, clinic: None, owner: type) -> _Port[T]: ...
    @overload
    def __get__(self, clinic: Clinic, owner: type) -> T: ...
    def __get__(self, clinic: Clinic | None, owner: type) -> Any:
        return self if clinic is None else getattr(clinic.ports, self._name)

    def __set__(self, clinic: Clinic, value: T) -> None:
        setattr(clinic.ports, self._name, value)


class Clinic:
    """The application service of one clinic: every use case of citas, on its own data."""

    appointments = _Port[AppointmentRepository]()
    doctors = _Port[DoctorRepository]()
    requests = _Port[BookingRequestRepository]()
    request_queue = _Port[BookingRequestQueue]()
    clock = _Port[Clock]()
    ids = _Port[IdGenerator]()
    countries = _Port[CountryCatalog]()
    page_tokens = _Port[PageTokens]()
    holidays = _Port[HolidayCalendar]()

    @property
    def clinic_id(self) -> str:
        """The clinic whose data these use cases read and write."""
        return self.ports.clinic_id

    def __init__(
        self,
        appointments: AppointmentRepository,
        doctors: DoctorRepository,
        requests: BookingRequestRepository,
        request_queue: BookingRequestQueue,
        clock: Clock,
        ids: IdGenerator,
        countries: CountryCatalog,
        page_tokens: PageTokens | None = None,
        *,
        clinic_id: str,
        holidays: HolidayCalendar | None = None,
        waitlist: WaitlistRepository | None = None,
        hold_minutes: int = DEFAULT_HOLD_MINUTES,
        contacts: PatientContacts | None = None,
    ) -> None:
        self.ports = Ports(
            clinic_id=check_clinic_id(clinic_id),
            appointments=appointments,
            doctors=doctors,
            requests=requests,
            request_queue=request_queue,
            clock=clock,
            ids=ids,
            countries=countries,
            # Every process of a deployment must share one key (bootstrap passes the
            # configured one); a random key is right only where one process answers every page.
            page_tokens=page_tokens if page_tokens is not None else PageTokens.ephemeral(),
            # None is a calendar without holidays: for embedders that bring no holiday data.
            # Every entrypoint passes the maintained library's (`adapters.holidays`).
            holidays=holidays if holidays is not None else NoHolidays(),
            waitlist=waitlist,
            contacts=contacts,
        )
        doctor_cases = DoctorUseCases(self.ports)
        booking = BookingUseCases(self.ports, doctor_cases)
        lists = ListUseCases(self.ports, doctor_cases)
        booking_requests = BookingRequestUseCases(self.ports, doctor_cases, booking)
        # Handed out as they are: the facade adds no behaviour of its own.
        self._hand_out_doctors(doctor_cases)
        self.book = booking.book
        self.get = booking.get
        self.reschedule = booking.reschedule
        self.change_status = booking.change_status
        self.cancel = booking.cancel
        self.list_doctor_day = lists.list_doctor_day
        self.list_by_country_status = lists.list_by_country_status
        self.request_booking = booking_requests.request_booking
        self.booking_request = booking_requests.booking_request
        self.process_booking_request = booking_requests.process_booking_request
        self.handle_booking_request = booking_requests.handle_booking_request
        cadence = CadenceUseCases(self.ports)
        self.due_steps = cadence.due_steps
        self.run_cadence = cadence.run_cadence
        self._hand_out_waitlist(WaitlistUseCases(self.ports, doctor_cases, hold_minutes))

    def _hand_out_doctors(self, doctor_cases: DoctorUseCases) -> None:
        self.register_doctor = doctor_cases.register_doctor
        self.doctor = doctor_cases.doctor
        self.availability = doctor_cases.availability
        self.put_time_off = doctor_cases.put_time_off
        self.remove_time_off = doctor_cases.remove_time_off
        self.list_time_off = doctor_cases.list_time_off
        self.national_holidays = doctor_cases.national_holidays

    def _hand_out_waitlist(self, waiting: WaitlistUseCases) -> None:
        self.join_waitlist = waiting.join
        self.waitlist_entry = waiting.entry
        self.list_waitlist = waiting.list_waitlist
        self.withdraw_from_waitlist = waiting.withdraw
        self.accept_offer = waiting.accept
        self.decline_offer = waiting.decline
        self.sweep_offers = waiting.sweep
        self.refill = waiting.refill
        self.refill_after = waiting.refill_after
