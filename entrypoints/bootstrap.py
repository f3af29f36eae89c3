"""The composition root: one function wires a backend into the `App` the entrypoints run on.

`build_app(settings)` returns an `App` holding what the handlers need (the clinic directory,
each clinic's use cases, the patient messenger, the outbox, the publisher, the booking queue,
the clock) and, on the memory backend, the in-process pieces `citas serve` drives. A Lambda
module builds its app once, lazily, from the environment (`LazyApp`); a test or the local
server builds its own and hands it over.

Nothing here runs at import time: no app and no network client exist until the first request
asks for one (cold starts stay short), and the memory backend never imports boto3. punq does
the autowiring inside `build_container`; nothing outside this module resolves from it.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from typing import Any, cast

import attrs
import punq

from adapters.clinics import StaticClinicDirectory
from adapters.console import ConsoleNotifier
from adapters.holidays import LibraryHolidayCalendar
from adapters.links import StaticLinkKeys, parse_link_secret, random_link_keys
from adapters.memory.patients import InMemorySentMessages
from adapters.memory.store import (
    InMemoryBookingRequestQueue,
    InMemoryEventOutbox,
    InMemoryEventPublisher,
    InMemoryNotifier,
    InMemoryProcessedEvents,
    InMemoryRepositories,
    MemoryStore,
)
from adapters.system import SystemClock, UuidV7Generator
from domain.countries import CountryCatalog
from domain.errors import TemporarilyUnavailable
from domain.pagination import PageTokens
from domain.use_cases import Clinic, PatientMessenger
from domain.use_cases.links import Links
from domain.use_cases.pages import PatientPages
from domain.use_cases.replies import PatientReplies
from domain.waitlist import DEFAULT_HOLD_MINUTES
from entrypoints.config import Settings
from ports.clinics import ClinicDirectory
from ports.holidays import HolidayCalendar
from ports.links import LinkKeySource
from ports.messaging import BookingRequestQueue, EventPublisher, Notifier
from ports.patients import DeferredMessages, PatientContacts, SentMessages
from ports.repositories import (
    AppointmentRepository,
    BookingRequestRepository,
    ClinicRepositories,
    DoctorRepository,
    EventOutbox,
    ProcessedEvents,
    WaitlistRepository,
)
from ports.system import Clock, IdGenerator

# Expected to offer `register(container, settings)`, registering the aws adapters of the ports.
AWS_BOOTSTRAP = "adapters.aws.bootstrap"
AWS_UNAVAILABLE = "the aws backend is not available in this build"


@attrs.frozen
class MemoryBackend:
    """The in-process pieces of the memory backend that `citas serve` and tests drive."""

    store: MemoryStore
    request_queue: InMemoryBookingRequestQueue
    publisher: InMemoryEventPublisher


class ClinicServices:
    """Each served clinic's use cases, built on first use over that clinic's repositories."""

    def __init__(
        self,
        clinics: ClinicDirectory,
        repositories: ClinicRepositories,
        request_queue: BookingRequestQueue,
        clock: Clock,
        ids: IdGenerator,
        countries: CountryCatalog,
        holidays: HolidayCalendar,
        page_tokens: PageTokens | None = None,
        hold_minutes: int = DEFAULT_HOLD_MINUTES,
    ) -> None:
        self._clinics = clinics
        self._repositories = repositories
        self._holidays = holidays
        self._hold_minutes = hold_minutes
        self._shared = (request_queue, clock, ids, countries, page_tokens)
        self._built: dict[str, Clinic] = {}
        self._lock = threading.Lock()

    def __call__(self, clinic_id: str) -> Clinic:
        """The use cases of `clinic_id`; TemporarilyUnavailable if it is not served (yet)."""
        with self._lock:
            found = self._built.get(clinic_id)
        if found is not None:
            return found
        profile = self._clinics.get(clinic_id)
        if profile is None:
            # Only a message can name a clinic (the HTTP edge maps keys). A clinic just added
            # may not be in this container's directory yet: the message is tried again, and
            # one of a clinic no longer served ends in the dead-letter queue, never elsewhere.
            raise TemporarilyUnavailable(
                "this deployment does not serve that clinic (yet)", service="clinics"
            )
        queue, clock, ids, countries, tokens = self._shared
        repositories = self._repositories
        clinic = Clinic(
            repositories.appointments(clinic_id),
            repositories.doctors(clinic_id),
            repositories.requests(clinic_id),
            queue,
            clock,
            ids,
            countries,
            tokens,
            clinic_id=clinic_id,
            holidays=self._holidays,
            waitlist=repositories.waitlist(clinic_id),
            contacts=repositories.contacts(clinic_id),
            # The clinic's own hold, else the deployment's; read once per container, as the
            # clinic is built (a changed hold reaches the containers started after it).
            hold_minutes=profile.hold_minutes or self._hold_minutes,
        )
        with self._lock:
            return self._built.setdefault(clinic_id, clinic)


@attrs.frozen
class App:
    """What the entrypoints need, wired once for one backend."""

    settings: Settings
    clinics: ClinicDirectory
    services: ClinicServices
    messenger: PatientMessenger
    pages: PatientPages
    replies: PatientReplies
    links: Links
    outbox: EventOutbox
    # None on an API-only aws function: only the relay publishes, so it needs no events queue.
    publisher: EventPublisher | None
    request_queue: BookingRequestQueue
    clock: Clock
    memory: MemoryBackend | None = None

    def for_clinic(self, clinic_id: str) -> Clinic:
        """The use cases of one served clinic, on that clinic's data only."""
        return self.services(clinic_id)


def build_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    ids: IdGenerator | None = None,
    overrides: Mapping[Any, object] | None = None,
) -> App:
    """The app of `settings.backend`; `clock`, `ids` and `overrides` replace the defaults.

    `overrides` maps a port to the adapter that serves it, so a test can put a failing one
    behind any port.
    """
    container, memory = _wire(settings, clock, ids)
    scoped = {p: i for p, i in (overrides or {}).items() if p in _CLINIC_PORTS}
    for port, instance in (overrides or {}).items():
        if port not in _CLINIC_PORTS:
            container.register(port, instance=instance)
    if scoped:
        base = container.resolve(ClinicRepositories)
        container.register(ClinicRepositories, instance=_Overridden(base, scoped))
    return App(
        settings=settings,
        clinics=container.resolve(ClinicDirectory),
        services=container.resolve(ClinicServices),
        messenger=container.resolve(PatientMessenger),
        pages=container.resolve(PatientPages),
        replies=container.resolve(PatientReplies),
        links=container.resolve(Links),
        outbox=container.resolve(EventOutbox),
        publisher=_optional(container, EventPublisher),
        request_queue=container.resolve(BookingRequestQueue),
        clock=container.resolve(Clock),
        memory=memory,
    )


def app_from_env() -> App:
    """The app the environment configures, as a deployed function runs it."""
    return build_app(Settings.from_env())


AppSource = Callable[[], App]


class LazyApp:
    """An app built on first use and kept: one per Lambda container, none at import time."""

    def __init__(self, build: AppSource = app_from_env) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._app: App | None = None

    @property
    def built(self) -> bool:
        """Whether the app exists yet."""
        return self._app is not None

    def __call__(self) -> App:
        """The app, built now if this is the first call."""
        # Uncontended in Lambda (one request at a time); the lock only keeps a threaded
        # caller from building two.
        with self._lock:
            if self._app is None:
                self._app = self._build()
            return self._app


# The ports each clinic has its own adapter of (built per clinic by `ClinicRepositories`).
_CLINIC_PORTS = (
    AppointmentRepository,
    DoctorRepository,
    BookingRequestRepository,
    PatientContacts,
    DeferredMessages,
    WaitlistRepository,
)


class _Overridden:
    """`ClinicRepositories` with some ports served by one given adapter, for every clinic."""

    def __init__(self, base: ClinicRepositories, instances: Mapping[Any, object]) -> None:
        self._base = base
        self._instances = instances

    def appointments(self, clinic_id: str) -> AppointmentRepository:
        """The override, or the backend's own."""
        found = self._instances.get(AppointmentRepository)
        return (
            cast(AppointmentRepository, found)
            if found is not None
            else self._base.appointments(clinic_id)
        )

    def doctors(self, clinic_id: str) -> DoctorRepository:
        """The override, or the backend's own."""
        found = self._instances.get(DoctorRepository)
        return cast(DoctorRepository, found) if found is not None else self._base.doctors(clinic_id)

    def requests(self, clinic_id: str) -> BookingRequestRepository:
        """The override, or the backend's own."""
        found = self._instances.get(BookingRequestRepository)
        return (
            cast(BookingRequestRepository, found)
            if found is not None
            else self._base.requests(clinic_id)
        )

    def contacts(self, clinic_id: str) -> PatientContacts:
        """The override, or the backend's own."""
        found = self._instances.get(PatientContacts)
        return cast(PatientContacts, found) if found is not None else self._base.contacts(clinic_id)

    def deferred(self, clinic_id: str) -> DeferredMessages:
        """The override, or the backend's own."""
        found = self._instances.get(DeferredMessages)
        return (
            cast(DeferredMessages, found) if found is not None else self._base.deferred(clinic_id)
        )

    def waitlist(self, clinic_id: str) -> WaitlistRepository:
        """The override, or the backend's own."""
        found = self._instances.get(WaitlistRepository)
        return (
            cast(WaitlistRepository, found) if found is not None else self._base.waitlist(clinic_id)
        )


def _optional(container: punq.Container, port: Any) -> Any:
    try:
        return container.resolve(port)
    except punq.MissingDependencyError:
        return None


def build_container(
    settings: Settings,
    *,
    clock: Clock | None = None,
    ids: IdGenerator | None = None,
) -> punq.Container:
    """The punq container behind `build_app`, registered by port; adapter tests inspect it."""
    return _wire(settings, clock, ids)[0]


def _wire(
    settings: Settings, clock: Clock | None, ids: IdGenerator | None
) -> tuple[punq.Container, MemoryBackend | None]:
    container = punq.Container()
    memory = None
    container.register(Settings, instance=settings)
    container.register(CountryCatalog, instance=settings.countries)
    container.register(Clock, instance=clock if clock is not None else SystemClock())
    container.register(IdGenerator, instance=ids if ids is not None else UuidV7Generator())
    # One calendar per container: it keeps each country's year once it has been asked for.
    container.register(HolidayCalendar, instance=LibraryHolidayCalendar())
    if settings.backend == "memory":
        memory = _register_memory(container)
    elif settings.backend == "aws":
        _register_aws(container, settings)
    else:  # pragma: no cover - Settings only admits the two
        raise ValueError(f"unknown backend {settings.backend!r}")
    _register_notifier(container, settings)
    _register_clinics(container, settings)
    # Autowired from the ports registered above; one per container.
    tokens = PageTokens(settings.page_token_key) if settings.page_token_key else None
    container.register(
        ClinicServices,
        scope=punq.Scope.singleton,
        page_tokens=tokens,
        hold_minutes=settings.hold_minutes,
    )
    _register_links(container, settings)
    container.register(PatientMessenger, scope=punq.Scope.singleton)
    # The use cases take the clinic's services as a function of its id: the same one.
    container.register(
        PatientPages,
        factory=lambda: PatientPages(
            container.resolve(ClinicDirectory),
            container.resolve(ClinicServices),
            container.resolve(Links),
            container.resolve(Clock),
        ),
        scope=punq.Scope.singleton,
    )
    container.register(
        PatientReplies,
        factory=lambda: PatientReplies(
            container.resolve(ClinicServices),
            container.resolve(PatientMessenger),
            container.resolve(ProcessedEvents),
            container.resolve(Clock),
            container.resolve(IdGenerator),
        ),
        scope=punq.Scope.singleton,
    )
    return container, memory


def _register(container: punq.Container, instance: Any, *keys: Any) -> None:
    for key in keys:
        container.register(key, instance=instance)


def _register_memory(container: punq.Container) -> MemoryBackend:
    memory = MemoryBackend(MemoryStore(), InMemoryBookingRequestQueue(), InMemoryEventPublisher())
    store = memory.store
    _register(container, InMemoryRepositories(store), ClinicRepositories)
    _register(container, InMemoryEventOutbox(store), EventOutbox)
    _register(container, memory.publisher, EventPublisher)
    _register(container, memory.request_queue, BookingRequestQueue)
    _register(container, InMemoryProcessedEvents(store), ProcessedEvents)
    _register(container, InMemorySentMessages(store), SentMessages)
    return memory


def _register_aws(container: punq.Container, settings: Settings) -> None:
    # Imported here so the memory backend (and its cold start) never loads boto3.
    try:
        aws_bootstrap = importlib.import_module(AWS_BOOTSTRAP)
    except ModuleNotFoundError as e:
        if e.name is None or not e.name.startswith((AWS_BOOTSTRAP, "boto3", "botocore")):
            raise  # a bug inside the aws adapters, not a missing piece
        raise RuntimeError(AWS_UNAVAILABLE) from e
    aws_bootstrap.register(container, settings)


def _register_clinics(container: punq.Container, settings: Settings) -> None:
    path = settings.clinics_parameter_path
    if path is None:
        local = StaticClinicDirectory((c.profile, c.api_key_id) for c in settings.clinics)
        _register(container, local, ClinicDirectory)
        return
    # A deployed function: Terraform wrote the clinics to SSM. Imported here, like the aws
    # backend, so the local server never loads boto3 for it.
    from adapters.aws.clinics import SSMClinicDirectory

    _register(container, SSMClinicDirectory(path), ClinicDirectory)


def _register_links(container: punq.Container, settings: Settings) -> None:
    keys: LinkKeySource
    if settings.link_keys_parameter is not None:
        # Imported here, like the aws backend: boto3 loads only where the keys live in AWS.
        from adapters.aws.link_keys import SsmLinkKeys

        keys = SsmLinkKeys(settings.link_keys_parameter)
    elif settings.link_keys_secret is not None:
        from adapters.aws.link_keys import SecretsManagerLinkKeys

        keys = SecretsManagerLinkKeys(settings.link_keys_secret)
    elif settings.link_secret is not None:
        keys = StaticLinkKeys(parse_link_secret(settings.link_secret))
    else:
        keys = random_link_keys()
    _register(container, keys, LinkKeySource)
    _register(container, Links(keys, settings.public_base_url), Links)


def _register_notifier(container: punq.Container, settings: Settings) -> None:
    # Chosen apart from the backend: a local stack on emulated AWS still prints its messages.
    if settings.notifier == "memory":
        _register(container, InMemoryNotifier(), Notifier)
    elif settings.notifier == "console":
        _register(container, ConsoleNotifier(), Notifier)
    elif settings.notifier == "sns":
        # Imported here, like the aws backend: boto3 loads only where SMS is really sent.
        from adapters.aws.sns import SNSNotifier

        _register(container, SNSNotifier(), Notifier)
    elif settings.notifier == "aws":
        from adapters.aws.messaging import ChannelNotifier, EndUserSmsNotifier, WhatsAppNotifier

        notifier = ChannelNotifier(
            EndUserSmsNotifier(default_origin=settings.sms_origination),
            WhatsAppNotifier(default_origin=settings.whatsapp_phone_number_id),
        )
        _register(container, notifier, Notifier)
    else:  # pragma: no cover - Settings only admits the three
        raise ValueError(f"unknown notifier {settings.notifier!r}")
