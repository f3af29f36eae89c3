"""Use cases by concern; `Clinic` is the one door most callers use.

The only part of the domain that talks to ports. Each module takes what it needs from the
shared `Ports`; repositories take each aggregate's new events when they commit, so no use case
handles events by hand.
"""

from domain.pagination import MAX_PAGE
from domain.use_cases.booking import fingerprint
from domain.use_cases.clinic import Clinic
from domain.use_cases.context import ListResult
from domain.use_cases.doctors import Availability
from domain.use_cases.messenger import PatientMessenger
from domain.use_cases.requests import ProcessedRequest

__all__ = [
    "MAX_PAGE",
    "Availability",
    "Clinic",
    "ListResult",
    "PatientMessenger",
    "ProcessedRequest",
    "fingerprint",
]
