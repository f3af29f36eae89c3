"""The `citas` command: `serve` runs the HTTP API, `provision` and `migrate` the AWS setup.

`citas migrate` upgrades a table written by an earlier release (adapters/aws/migrate.py).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol, cast

import attrs

from adapters.console import LineWriter
from domain.clinics import DEMO_CLINIC_ID
from entrypoints import config

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

    from entrypoints.bootstrap import App
    from entrypoints.config import Backend, Settings
    from entrypoints.local.server import LocalApiServer

HTTP_API_MODULE = "entrypoints.lambda.http_api"
PAGES_MODULE = "entrypoints.lambda.patient_pages"
PROVISION_MODULE = "adapters.aws.provision"
MIGRATE_MODULE = "adapters.aws.migrate"
EXIT_USAGE = 2
# What `citas[cli]` adds to the core install; the commands import them lazily.
CLI_EXTRA_MODULES = frozenset({"punq", "aws_lambda_powertools", "hcl2", "boto3", "botocore"})

# Not named `citas.*`: Powertools' Logger(service="citas") filters every logger whose name
# contains "citas" out of the root handlers.
log = logging.getLogger("local.cli")


class BackgroundWork(Protocol):
    """The in-process relay and workers of a backend."""

    def start(self) -> None:
        """Start the background threads."""
        ...

    def stop(self, timeout: float = ...) -> None:
        """Stop them, waiting a little."""
        ...


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and the record's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        """Render `record` as one line of JSON."""
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            # The type and the frames, never the exception text: it may quote patient data.
            out["exception"] = record.exc_info[0].__name__
            out["traceback"] = "".join(traceback.format_tb(record.exc_info[2]))
        return json.dumps(out, default=str, ensure_ascii=False)


def configure_logging(level: int = logging.INFO) -> None:
    """Send every log record of the process, warnings included, to stderr as JSON lines.

    Both standard streams get one LineWriter each, before any handler or Powertools logger
    holds them: whatever writes to them, from whichever thread, lines stay whole.
    """
    sys.stdout = LineWriter.around(sys.stdout)
    sys.stderr = LineWriter.around(sys.stderr)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # botocore announces at INFO where it found credentials and endpoints, on every client.
    logging.getLogger("botocore").setLevel(max(level, logging.WARNING))
    logging.captureWarnings(True)

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        exc_info = (args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback)
        thread = args.thread.name if args.thread is not None else None
        log.error("thread died", exc_info=exc_info, extra={"fields": {"thread": thread}})

    threading.excepthook = thread_excepthook


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `citas`."""
    parser = argparse.ArgumentParser(
        prog="citas", description="Appointment backend for small clinics."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the HTTP API locally")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument(
        "--port", type=int, default=8000, help="port to listen on; 0 picks a free one"
    )
    serve.add_argument(
        "--backend",
        choices=("memory", "aws"),
        default=None,
        help="storage and messaging backend (default: $CITAS_BACKEND, else memory)",
    )
    serve.add_argument(
        "--no-demo", action="store_true", help="do not register the two demo doctors"
    )
    serve.add_argument(
        "--clinic",
        action="append",
        default=None,
        metavar="ID:KEY[:NAME]",
        help="serve this clinic with this x-api-key (repeatable; replaces $CITAS_CLINICS)",
    )
    # Its options (`--countries`, `--table`, `--help`, ...) belong to adapters.aws.provision.
    commands.add_parser(
        "provision",
        add_help=False,
        help="create the table and queues of infra/terraform on the configured AWS endpoints",
    )
    # Its options (`--table`, `--clinic`, `--dry-run`, `--help`) belong to adapters.aws.migrate.
    commands.add_parser(
        "migrate",
        add_help=False,
        help="upgrade a table of an earlier release to this one's keys (offline, idempotent)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `citas` with `argv` (default: the process arguments); returns the exit status."""
    try:
        return _run(argv)
    except ModuleNotFoundError as error:
        # A core install (`pip install citas`) has the domain only: say what to install
        # rather than show a traceback.
        if (error.name or "").split(".")[0] not in CLI_EXTRA_MODULES:
            raise
        print(
            f"citas: this command needs the cli extra (missing {error.name}):"
            " pip install 'citas[cli]'",
            file=sys.stderr,
        )
        return EXIT_USAGE


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "provision":
        config.bridge_aws_region()
        return provision(rest)
    if args.command == "migrate":
        config.bridge_aws_region()
        return run_tool("migrate", MIGRATE_MODULE, rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "serve":
        config.bridge_aws_region()
        return serve(args.host, args.port, args.backend, demo=not args.no_demo, clinics=args.clinic)
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _settings_defaults(*, countries: bool) -> list[str]:
    """`--table` (and `--countries`) as `citas serve` will use them, so the two always agree."""
    from entrypoints.config import Settings

    settings = Settings.from_env()
    table = ["--table", settings.table_name]
    return ["--countries", ",".join(settings.countries), *table] if countries else table


def provision(argv: Sequence[str] = ()) -> int:
    """Create the AWS resources on the configured endpoints, if this build has the aws backend."""
    return run_tool("provision", PROVISION_MODULE, argv, countries=True)


def run_tool(name: str, module_name: str, argv: Sequence[str], *, countries: bool = False) -> int:
    """Run the `main(argv)` of an aws-backend command module, after the settings' defaults."""
    try:
        defaults = _settings_defaults(countries=countries)
    except ValueError as error:
        print(f"citas {name}: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name not in (module_name, "boto3", "botocore"):
            raise
        print(f"citas {name}: the aws backend is not available in this build", file=sys.stderr)
        return EXIT_USAGE
    run = getattr(module, "main", None)
    if not callable(run):
        print(f"citas {name}: {module_name} has no main()", file=sys.stderr)
        return EXIT_USAGE
    # Options given on the command line come after the defaults, so they win.
    status = run([*defaults, *argv])
    return int(status) if status is not None else 0


def serve(
    host: str,
    port: int,
    backend: str | None,
    *,
    demo: bool = True,
    clinics: Sequence[str] | None = None,
) -> int:
    """Serve the HTTP API until Ctrl-C or SIGTERM; returns the exit status.

    `clinics` are `--clinic` values (`id:key[:Display name]`); they replace `CITAS_CLINICS`.
    """
    configure_logging()
    # Imported here: `citas provision` and `--help` must not pay for the whole application.
    from domain.cadence import set_quiet_hours
    from entrypoints.local.demo import register_demo_doctors

    quiet = os.environ.get("CITAS_QUIET_HOURS", "on").strip().lower()
    if quiet not in ("on", "off"):
        print(f"citas: CITAS_QUIET_HOURS must be on or off, not {quiet!r}", file=sys.stderr)
        return EXIT_USAGE
    set_quiet_hours(quiet == "on")

    try:
        app, sqs = _app(backend, clinics)
    except (ValueError, RuntimeError) as error:
        print(f"citas: {error}", file=sys.stderr)
        return EXIT_USAGE
    settings = app.settings
    if demo:
        try:
            register_demo_doctors(app.for_clinic(demo_clinic(settings)))
        except Exception as error:
            # Typically the aws backend without reachable endpoints or region. The message
            # is about configuration; no patient data is involved at start-up.
            print(
                f"citas: cannot register the demo doctors on backend {settings.backend}: "
                f"{type(error).__name__}: {error}",
                file=sys.stderr,
            )
            return EXIT_USAGE
    runtime = _background_work(app, sqs)

    try:
        server = _server(app, host, port)
    except OSError as error:
        print(f"citas: cannot listen on {host}:{port}: {error.strerror}", file=sys.stderr)
        return EXIT_USAGE
    if settings.public_base_url is None:
        # Links point at this very server, on the port it really bound.
        app.links.serve_at(server.url)
    return _serve_until_stopped(server, runtime, settings)


def _server(app: App, host: str, port: int) -> LocalApiServer:
    """The local API Gateway: the HTTP API, the patients' pages and the inbound replies."""
    from entrypoints.local.inbound import PATH as INBOUND_PATH
    from entrypoints.local.inbound import make_inbound_handler
    from entrypoints.local.server import LocalApiServer, PrefixRoute

    http_api = importlib.import_module(HTTP_API_MODULE)
    pages = importlib.import_module(PAGES_MODULE)
    # The handlers run on this very app (same store, same queue) that the threads work on.
    routes = (
        # API Gateway sends these to the pages function, without an API key.
        PrefixRoute("/p/", pages.make_handler(lambda: app), False, "/p/{token}"),
        # Only here: stands for the clinic's inbound number, so it takes the clinic's key.
        PrefixRoute(INBOUND_PATH, make_inbound_handler(app), True, INBOUND_PATH),
    )
    keys = {c.api_key: c.api_key_id for c in app.settings.clinics}
    return LocalApiServer(
        (host, port),
        http_api.make_handler(lambda: app),
        keys,
        describe=http_api.route_fields,
        routes=routes,
    )


def _app(backend: str | None, clinics: Sequence[str] | None) -> tuple[App, SQSClient | None]:
    """The app `citas serve` runs on, and the workers' SQS client on the aws backend."""
    from entrypoints.bootstrap import build_app
    from entrypoints.config import Settings, check_clinics, parse_clinic_option, with_channels

    settings = Settings.from_env()
    if backend is not None:
        settings = attrs.evolve(settings, backend=cast("Backend", backend))
    if clinics:
        chosen = check_clinics(tuple(parse_clinic_option(value) for value in clinics), "--clinic")
        # CITAS_CHANNELS applies to the clinics of --clinic as to those of the environment.
        channels = settings.clinics[0].profile.channels if settings.clinics else ("sms",)
        settings = attrs.evolve(settings, clinics=with_channels(chosen, channels))
    sqs = None
    if settings.backend == "aws":
        settings, sqs = _local_aws(settings)
    return build_app(settings), sqs


def demo_clinic(settings: Settings) -> str:
    """The clinic the demo doctors go to: `demo` when served, else the first one."""
    ids = [c.profile.clinic_id for c in settings.clinics]
    return DEMO_CLINIC_ID if DEMO_CLINIC_ID in ids else ids[0]


def _serve_until_stopped(
    server: LocalApiServer, runtime: BackgroundWork | None, settings: Settings
) -> int:
    """Run the server and the background work until a signal stops them; returns 0."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    serving = threading.Thread(target=server.serve_forever, name="citas-http", daemon=True)
    try:
        if runtime is not None:
            runtime.start()
        serving.start()
        first = settings.clinics[0]
        print(
            f"citas: serving {server.url} (backend {settings.backend}), x-api-key: {first.api_key}",
            flush=True,
        )
        # One log line per clinic served; never its key (the caller configured it).
        for clinic in settings.clinics:
            fields = {"clinic_id": clinic.profile.clinic_id, "name": clinic.profile.name}
            log.info("clinic served", extra={"fields": fields})
        log.info("serving", extra={"fields": {"url": server.url, "backend": settings.backend}})
        while not stop.wait(0.5):
            pass
    finally:
        if serving.is_alive():  # shutdown() would wait forever for a loop that never ran
            server.shutdown()
        server.server_close()
        if runtime is not None:
            runtime.stop()
        for sig, handler_before in previous.items():
            signal.signal(sig, handler_before)
        log.info("stopped")
    return 0


def _local_aws(settings: Settings) -> tuple[Settings, SQSClient]:
    """Settings completed with the local queue URLs, and the workers' SQS client."""
    # A RuntimeError here carries one line for the user: emulator down, not provisioned, ...
    try:
        from adapters.aws.dynamodb import default_client as dynamodb_client
        from adapters.aws.sqs import default_client as sqs_client
        from entrypoints.local.aws_runtime import check_table, with_local_queue_urls
    except ModuleNotFoundError as error:
        if error.name is None or not error.name.startswith(("adapters.aws", "boto3", "botocore")):
            raise
        raise RuntimeError("the aws backend is not available in this build") from error
    from botocore.exceptions import BotoCoreError

    try:
        sqs = sqs_client()
        settings = with_local_queue_urls(settings, sqs)
        check_table(dynamodb_client(), settings.table_name)
    except BotoCoreError as error:  # e.g. no region configured
        raise RuntimeError(f"{error} (set AWS_REGION, e.g. us-east-1)") from error
    return settings, sqs


def _background_work(app: App, sqs: SQSClient | None = None) -> BackgroundWork | None:
    """The relay, workers and patient messenger that run inside `citas serve`."""
    if app.settings.backend == "aws":
        from entrypoints.local.aws_runtime import AwsRuntime

        if sqs is None:  # pragma: no cover - _local_aws always makes one
            raise RuntimeError("the aws runtime needs the SQS client")
        return AwsRuntime(app, sqs)
    if app.memory is None:
        log.warning(
            "no in-process relay or workers for this backend in this build",
            extra={"fields": {"backend": app.settings.backend}},
        )
        return None
    from entrypoints.local.runtime import LocalRuntime

    return LocalRuntime(app)


if __name__ == "__main__":
    sys.exit(main())
