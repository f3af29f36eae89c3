"""The composition root: which adapter serves which port, built once per container.

Resolve by port: `container.resolve(Clinic)`, `container.resolve(EventOutbox)`,
`container.resolve(EventPublisher)`, `container.resolve(BookingRequestQueue)`,
`container.resolve(Clock)`, `container.resolve(Settings)`, `container.resolve(Notifier)` (chosen
by `settings.notifier`, apart from the backend). On the memory backend the concrete
in-memory classes (`InMemoryBookingRequestQueue`, ...) and the `MemoryStore` are registered too,
so the local server can drive the relay and the workers in-process.

Nothing here runs at import time: no container and no network client exist until the first
request asks for one (cold starts stay short), and the memory backend never imports boto3.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

import punq

from adapters.console import ConsoleNotifier
from adapters.memory.store import (
    InMemoryAppointmentRepository,
    InMemoryBookingRequestQueue,
    InMemoryBookingRequestRepository,
    InMemoryDoctorRepository,
    InMemoryEventOutbox,
    InMemoryEventPublisher,
    InMemoryNotifier,
    InMemoryProcessedEvents,
    MemoryStore,
)
from adapters.system import SystemClock, UuidV7Generator
from domain.countries import CountryCatalog
from domain.pagination import PageTokens
from domain.use_cases import Clinic, PatientMessenger
from entrypoints.config import Settings
from ports.messaging import BookingRequestQueue, EventPublisher, Notifier
from ports.repositories import (
    AppointmentRepository,
    BookingRequestRepository,
    DoctorRepository,
    EventOutbox,
    ProcessedEvents,
)
from ports.system import Clock, IdGenerator

# Expected to offer `register(container, settings)`, registering the aws adapters of the ports.
AWS_BOOTSTRAP = "adapters.aws.bootstrap"
AWS_UNAVAILABLE = "the aws backend is not available in this build"

_lock = threading.Lock()
_container: punq.Container | None = None


def build_container(
    settings: Settings,
    *,
    clock: Clock | None = None,
    ids: IdGenerator | None = None,
) -> punq.Container:
    """A container wired for `settings.backend`; `clock` and `ids` replace the system ones."""
    container = punq.Container()
    container.register(Settings, instance=settings)
    container.register(CountryCatalog, instance=settings.countries)
    container.register(Clock, instance=clock if clock is not None else SystemClock())
    container.register(IdGenerator, instance=ids if ids is not None else UuidV7Generator())
    if settings.backend == "memory":
        _register_memory(container)
    elif settings.backend == "aws":
        _register_aws(container, settings)
    else:  # pragma: no cover - Settings only admits the two
        raise ValueError(f"unknown backend {settings.backend!r}")
    _register_notifier(container, settings)
    # Autowired from the ports registered above; one per container, it holds no state.
    tokens = PageTokens(settings.page_token_key) if settings.page_token_key else None
    container.register(Clinic, scope=punq.Scope.singleton, page_tokens=tokens)
    container.register(PatientMessenger, scope=punq.Scope.singleton)
    return container


def _register(container: punq.Container, instance: Any, *keys: Any) -> None:
    for key in keys:
        container.register(key, instance=instance)


def _register_memory(container: punq.Container) -> None:
    store = MemoryStore()
    _register(container, store, MemoryStore)
    _register(
        container,
        InMemoryAppointmentRepository(store),
        AppointmentRepository,
        InMemoryAppointmentRepository,
    )
    _register(container, InMemoryDoctorRepository(store), DoctorRepository)
    _register(container, InMemoryBookingRequestRepository(store), BookingRequestRepository)
    _register(container, InMemoryEventOutbox(store), EventOutbox, InMemoryEventOutbox)
    _register(container, InMemoryEventPublisher(), EventPublisher, InMemoryEventPublisher)
    _register(
        container, InMemoryBookingRequestQueue(), BookingRequestQueue, InMemoryBookingRequestQueue
    )
    _register(container, InMemoryProcessedEvents(store), ProcessedEvents)


def _register_aws(container: punq.Container, settings: Settings) -> None:
    # Imported here so the memory backend (and its cold start) never loads boto3.
    try:
        aws_bootstrap = importlib.import_module(AWS_BOOTSTRAP)
    except ModuleNotFoundError as e:
        if e.name is None or not e.name.startswith((AWS_BOOTSTRAP, "boto3", "botocore")):
            raise  # a bug inside the aws adapters, not a missing piece
        raise RuntimeError(AWS_UNAVAILABLE) from e
    aws_bootstrap.register(container, settings)


def _register_notifier(container: punq.Container, settings: Settings) -> None:
    # Chosen apart from the backend: a local stack on emulated AWS still prints its messages.
    if settings.notifier == "memory":
        _register(container, InMemoryNotifier(), Notifier, InMemoryNotifier)
    elif settings.notifier == "console":
        _register(container, ConsoleNotifier(), Notifier, ConsoleNotifier)
    elif settings.notifier == "sns":
        # Imported here, like the aws backend: boto3 loads only where SMS is really sent.
        from adapters.aws.sns import SNSNotifier

        _register(container, SNSNotifier(), Notifier, SNSNotifier)
    else:  # pragma: no cover - Settings only admits the three
        raise ValueError(f"unknown notifier {settings.notifier!r}")


def get_container() -> punq.Container:
    """The process's container, built on first use from the environment."""
    global _container
    container = _container
    if container is None:
        with _lock:
            if _container is None:
                _container = build_container(Settings.from_env())
            container = _container
    return container


def set_container(container: punq.Container) -> None:
    """Make `container` the process's container (tests, the local server with a fixed clock)."""
    global _container
    with _lock:
        _container = container


def reset_container() -> None:
    """Forget the process's container; the next `get_container` builds a fresh one."""
    global _container
    with _lock:
        _container = None


def clinic(container: punq.Container) -> Clinic:
    """The `Clinic` of `container`, typed."""
    found: Clinic = container.resolve(Clinic)
    return found
