"""infra/terraform agrees with the code: handlers, settings, permissions, resources, the API.

Everything here reads the .tf files with python-hcl2 and the code with importlib or ast, so
it runs without Terraform or AWS. `terraform validate` and checkov complete the picture (CI
and tests/infra/test_checkov.py).
"""

from __future__ import annotations

import ast
import importlib
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.aws import resources as tf_resources
from adapters.aws.clinics import parse_clinic_parameter
from adapters.aws.dynamodb import outbox_pk
from adapters.aws.link_keys import parse_key_ring
from domain.clinics import DEMO_CLINIC, MAX_CLINIC_NAME, MAX_HOLD_MINUTES, ClinicProfile
from domain.errors import ValidationError
from domain.waitlist import DEFAULT_HOLD_MINUTES
from entrypoints.config import NOTIFIERS, Settings
from tests.infra import terraform as tf
from tests.infra.adapter_calls import iam_actions

ROOT = tf.ROOT
CONFIG = ROOT / "entrypoints" / "config.py"
OPENAPI = ROOT / "api" / "openapi.yaml"

# The functions of lambda.tf, by kind (local.functions), and the handler each must run.
HANDLERS = {
    "http_api": "entrypoints.lambda.http_api.handler",
    "outbox_relay": "entrypoints.lambda.outbox_relay.handler",
    "booking_worker": "entrypoints.lambda.booking_worker.handler",
    "notifications": "entrypoints.lambda.notifications.handler",
    "reminders": "entrypoints.lambda.reminders.handler",
    "offers_sweeper": "entrypoints.lambda.offers_sweeper.handler",
    "patient_pages": "entrypoints.lambda.patient_pages.handler",
    "inbound_sms": "entrypoints.lambda.inbound_sms.handler",
    "inbound_whatsapp": "entrypoints.lambda.inbound_whatsapp.handler",
}

# The functions that sign or check patients' links (CITAS_LINK_KEYS_PARAMETER, ssm:GetParameter
# on the key ring), and those that write to patients (End User Messaging SMS and Social).
LINK_KEY_READERS = {
    "patient_pages",
    "notifications",
    "reminders",
    "inbound_sms",
    "inbound_whatsapp",
}
MESSAGE_SENDERS = {"notifications", "reminders", "inbound_sms", "inbound_whatsapp"}

# The CITAS_ settings each function needs (entrypoints/config.py reads them).
_EVERY_FUNCTION = {
    "CITAS_BACKEND",
    "CITAS_COUNTRIES",
    "CITAS_TABLE_NAME",
    "CITAS_CLINICS_PARAMETER_PATH",
}
_LINK_KEYS = {"CITAS_LINK_KEYS_PARAMETER"}
# The deployment's default sending identities (left out when not configured) and the base of
# the links, the stage URL.
_MESSAGING = {
    "CITAS_NOTIFIER",
    "CITAS_SMS_ORIGINATION",
    "CITAS_WHATSAPP_PHONE_NUMBER_ID",
    "CITAS_PUBLIC_BASE_URL",
}
NEEDED_SETTINGS = {
    "http_api": _EVERY_FUNCTION | {"CITAS_BOOKING_QUEUE_URLS", "CITAS_PAGE_TOKEN_KEY"},
    "outbox_relay": _EVERY_FUNCTION | {"CITAS_EVENTS_QUEUE_URL"},
    "booking_worker": _EVERY_FUNCTION | {"CITAS_WORKER_COUNTRY"},
    # The events consumer also offers freed time to the waitlist, for the deployment's hold.
    "notifications": _EVERY_FUNCTION | _LINK_KEYS | _MESSAGING | {"CITAS_HOLD_MINUTES"},
    "reminders": _EVERY_FUNCTION | _LINK_KEYS | _MESSAGING,
    # It only lets offers go: it makes none, and writes to nobody.
    "offers_sweeper": _EVERY_FUNCTION,
    "patient_pages": _EVERY_FUNCTION | _LINK_KEYS,
    "inbound_sms": _EVERY_FUNCTION | _LINK_KEYS | _MESSAGING,
    "inbound_whatsapp": _EVERY_FUNCTION | _LINK_KEYS | _MESSAGING,
}
# Read only by the local server: on AWS, API Gateway checks the key (usage plan).
# The local server's clinics and keys; a deployed function reads them from SSM instead. Its
# clinics' channels and its link secret: a deployed function reads them from the clinic
# directory and the key ring.
# The local server's sweep interval: on AWS an EventBridge schedule runs the sweeper.
LOCAL_ONLY_SETTINGS = {
    "CITAS_API_KEY",
    "CITAS_CLINICS",
    "CITAS_CHANNELS",
    "CITAS_LINK_SECRET",
    "CITAS_SWEEP_SECONDS",
}
# Read on AWS, but not by this stack: the key ring in Secrets Manager instead of Parameter
# Store (this stack keeps it in Parameter Store, CITAS_LINK_KEYS_PARAMETER).
NOT_THIS_STACKS_SETTINGS = {"CITAS_LINK_KEYS_SECRET"}

# The adapter code each function runs, following the use cases its handler calls:
# a class (all its methods) or `Class.method`. The IAM actions themselves are derived from
# the adapters' source (tests/infra/adapter_calls.py), never written here.
# Every function resolves the clinic of what it handles: the key of a request, the clinic_id
# of a message or an event (the directory Terraform writes, CITAS_CLINICS_PARAMETER_PATH).
_EVERY_FUNCTION_ADAPTERS = ("SSMClinicDirectory",)
FUNCTION_ADAPTERS = {
    # Every Clinic use case the API exposes (doctors, bookings, lists, changes, requests,
    # the waitlist).
    "http_api": (
        *_EVERY_FUNCTION_ADAPTERS,
        "DynamoDBAppointmentRepository",
        "DynamoDBDoctorRepository",
        "DynamoDBBookingRequestRepository",
        "DynamoDBWaitlistRepository",
        "SQSBookingRequestQueue",
    ),
    # Publish the stream's event, then delete its outbox item.
    "outbox_relay": (
        *_EVERY_FUNCTION_ADAPTERS,
        "SQSEventPublisher.publish",
        "DynamoDBEventOutbox.remove",
    ),
    # Clinic.booking_request + process_booking_request (book with the request id as key;
    # the key is read only when the booking's write finds it taken).
    "booking_worker": (
        *_EVERY_FUNCTION_ADAPTERS,
        "DynamoDBBookingRequestRepository.get",
        "DynamoDBBookingRequestRepository.save",
        "DynamoDBAppointmentRepository.get",
        "DynamoDBAppointmentRepository.get_idempotency",
        "DynamoDBAppointmentRepository.add",
        # The doctor's schedule, which the booking's transaction checks the version of.
        "DynamoDBDoctorRepository.schedule",
    ),
    # Clinic.refill_after: the freed appointment, the doctor's fresh schedule, the waiting
    # entries and the offer's hold. Then PatientMessenger.handle: marker check, the
    # appointment (or entry) and doctor, the contact (opted out? awaiting an answer), the
    # message held by quiet hours or sent (SMS or WhatsApp, with its signed link) and
    # remembered, the marker.
    "notifications": (
        *_EVERY_FUNCTION_ADAPTERS,
        "DynamoDBDoctorRepository.schedule",
        "DynamoDBWaitlistRepository.list_by_doctor",
        "DynamoDBWaitlistRepository.offer",
        "DynamoDBWaitlistRepository.get",
        "DynamoDBProcessedEvents",
        "DynamoDBAppointmentRepository.get",
        "DynamoDBDoctorRepository.get",
        "DynamoDBPatientContacts.get",
        "DynamoDBPatientContacts.await_answer",
        "DynamoDBDeferredMessages.defer",
        "DynamoDBSentMessages.remember",
        "EndUserSmsNotifier.send",
        "WhatsAppNotifier.send",
        "SsmLinkKeys",
    ),
    # The confirmation cadence: country-status lists, each step recorded with its event, the
    # messages it sends, and the held messages that are due.
    "reminders": (
        *_EVERY_FUNCTION_ADAPTERS,
        "DynamoDBAppointmentRepository.list_by_country_status",
        "DynamoDBAppointmentRepository.record_cadence",
        "DynamoDBAppointmentRepository.get",
        "DynamoDBDoctorRepository.get",
        "DynamoDBDeferredMessages.due",
        "DynamoDBDeferredMessages.done",
        "DynamoDBPatientContacts.get",
        "DynamoDBPatientContacts.await_answer",
        "DynamoDBProcessedEvents",
        "EndUserSmsNotifier.send",
        "WhatsAppNotifier.send",
        "SsmLinkKeys",
    ),
    # Clinic.sweep_offers: the clinic's offered entries, each read again and released.
    "offers_sweeper": (
        *_EVERY_FUNCTION_ADAPTERS,
        "DynamoDBWaitlistRepository.offered",
        "DynamoDBWaitlistRepository.get",
        "DynamoDBWaitlistRepository.release",
    ),
    # The page of one appointment (token checked), its doctor's free slots, and the
    # patient's confirm, cancel or reschedule.
    "patient_pages": (
        *_EVERY_FUNCTION_ADAPTERS,
        "DynamoDBAppointmentRepository.get",
        "DynamoDBAppointmentRepository.update",
        "DynamoDBAppointmentRepository.list_by_doctor",
        "DynamoDBDoctorRepository.get",
        "DynamoDBDoctorRepository.schedule",
        # A waitlist offer's page: the entry, accepted (booked over its hold) or declined.
        "DynamoDBWaitlistRepository.get",
        "DynamoDBWaitlistRepository.accept",
        "DynamoDBWaitlistRepository.release",
        "SsmLinkKeys",
    ),
    # A reply: marker check, the phone's contact (answered, opted out or in), the appointment
    # it confirms or cancels, and the answer or help message.
    "inbound_sms": (
        *_EVERY_FUNCTION_ADAPTERS,
        "DynamoDBProcessedEvents",
        "DynamoDBPatientContacts.get",
        "DynamoDBPatientContacts.answered",
        "DynamoDBPatientContacts.set_opted_out",
        "DynamoDBAppointmentRepository.get",
        "DynamoDBAppointmentRepository.update",
        "DynamoDBDoctorRepository.get",
        # SI or NO to a waitlist offer: the entry, accepted or let go.
        "DynamoDBWaitlistRepository.get",
        "DynamoDBWaitlistRepository.accept",
        "DynamoDBWaitlistRepository.release",
        "DynamoDBDoctorRepository.schedule",
        "EndUserSmsNotifier.send",
        "WhatsAppNotifier.send",
        "SsmLinkKeys",
    ),
    # As inbound_sms, and a failed WhatsApp delivery sent again by SMS (the sent message).
    "inbound_whatsapp": (
        *_EVERY_FUNCTION_ADAPTERS,
        "DynamoDBProcessedEvents",
        "DynamoDBPatientContacts.get",
        "DynamoDBPatientContacts.answered",
        "DynamoDBPatientContacts.set_opted_out",
        "DynamoDBAppointmentRepository.get",
        "DynamoDBAppointmentRepository.update",
        "DynamoDBDoctorRepository.get",
        # SI or NO to a waitlist offer: the entry, accepted or let go.
        "DynamoDBWaitlistRepository.get",
        "DynamoDBWaitlistRepository.accept",
        "DynamoDBWaitlistRepository.release",
        "DynamoDBDoctorRepository.schedule",
        "DynamoDBSentMessages.find",
        "EndUserSmsNotifier.send",
        "WhatsAppNotifier.send",
        "SsmLinkKeys",
    ),
}

# What Lambda itself calls with the function's role (AWS's documented requirements).
EVENT_SOURCE_ACTIONS = {
    "aws_sqs_queue": {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"},
    "aws_dynamodb_table": {
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
    },
}
FAILURE_DESTINATION_ACTIONS = {"sqs:SendMessage"}
DATA_SERVICES = ("dynamodb:", "sqs:", "sns:", "ssm:", "sms-voice:", "social-messaging:")

# The queues each role may touch (any action).
FUNCTION_QUEUES = {
    "http_api": {"booking_requests"},
    "outbox_relay": {"events", "outbox_relay_failures"},
    "booking_worker": {"booking_requests"},
    "notifications": {"events"},
    "reminders": {"reminders_dlq"},
    "offers_sweeper": {"offers_sweeper_dlq"},
    "patient_pages": set(),
    "inbound_sms": {"inbound_sms_dlq"},
    "inbound_whatsapp": {"inbound_whatsapp_dlq"},
}

EXPECTED_FILES = {
    "versions.tf",
    "variables.tf",
    "kms.tf",
    "dynamodb.tf",
    "sqs.tf",
    "lambda.tf",
    "iam.tf",
    "api.tf",
    "waf.tf",
    # Patients' messages: the inbound topics and the sending identities.
    "messaging.tf",
    "monitoring.tf",
    "outputs.tf",
    # Where the addresses of earlier versions went (moved blocks).
    "moved.tf",
}

_SKIP = re.compile(r"#\s*checkov:skip=([A-Za-z0-9_]+)(?::(.*))?$")


def function_resource() -> dict[str, Any]:
    """The one aws_lambda_function of lambda.tf: one instance per entry of local.functions."""
    declared = tf.resources("aws_lambda_function")
    assert set(declared) == {"this"}, sorted(declared)
    body = declared["this"]
    assert body["for_each"] == "${local.functions}"
    return body


def function_entries() -> dict[str, tuple[str, dict[str, Any]]]:
    """Each kind of function -> (its key in local.functions, its entry there).

    A single function's key is its kind; the booking worker's is the key template of the
    per-country for expression (`booking_worker_${lower(country)}`), its country `${country}`.
    """
    assert tf.local("functions") == "${merge(local.single_functions, local.booking_workers)}"
    entries = {key: (key, entry) for key, entry in tf.local("single_functions").items()}
    variable, key, worker = tf.for_object(tf.local("booking_workers"))
    assert (variable, key) == ("country", "booking_worker_${lower(country)}")
    assert worker["country"] == "${country}"
    entries[worker["kind"]] = (key, worker)
    for kind, (_key, entry) in entries.items():
        assert entry["kind"] == kind
    return entries


def function_entry(function: str) -> dict[str, Any]:
    return function_entries()[function][1]


def entry_environment(function: str) -> dict[str, Any]:
    """The entry's own settings: an object, or a merge of locals that are objects."""
    value = function_entry(function)["environment"] or {}
    if isinstance(value, str):
        named = re.fullmatch(r"\$\{(?:merge\()?(local\.\w+(?:, local\.\w+)*)\)?\}", value)
        assert named is not None, f"{function}: unreadable environment {value!r}"
        merged: dict[str, Any] = {}
        for name in named.group(1).split(", "):
            merged.update(tf.local(name.removeprefix("local.")))
        return merged
    assert isinstance(value, dict), value
    return value


def environment(function: str) -> dict[str, Any]:
    """Every setting of the function, a null one (left out by the resource) included."""
    variables = tf.block(function_resource(), "environment")["variables"]
    assert variables == (
        "${{for name, value in merge(local.function_environment, each.value.environment) : "
        "name => value if value != null}}"
    )
    return {**tf.local("function_environment"), **entry_environment(function)}


def function_keys_to_kinds(keys: set[str]) -> set[str]:
    """The kinds of the single functions named by key (aws_lambda_function.this["<key>"])."""
    singles = tf.local("single_functions")
    return {singles[key]["kind"] for key in keys}


def config_settings() -> set[str]:
    """Every `CITAS_*` string literal of entrypoints/config.py: the settings the code reads."""
    found = set()
    for node in ast.walk(ast.parse(CONFIG.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and re.fullmatch(r"CITAS_[A-Z0-9_]+", node.value)
        ):
            found.add(node.value)
    return found


def policy(function: str) -> dict[str, Any]:
    return tf.data_sources("aws_iam_policy_document")[function]


def own_index(function: str) -> str:
    """How the function's own policy document indexes the per-function maps."""
    if function == "booking_worker":
        assert policy(function)["for_each"] == "${local.booking_workers}"
        return "each.key"
    assert "for_each" not in policy(function)
    return f'"{function}"'


def statement_actions(document: dict[str, Any]) -> set[str]:
    return {a for s in tf.policy_statements(document) for a in s.get("actions", [])}


# --- files -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", tf.tf_files(), ids=lambda p: p.name)
def test_every_tf_file_parses_with_python_hcl2(path: Path) -> None:
    parsed = tf_resources.parse_tf_file(path)
    assert parsed, f"{path.name} is empty"


def test_the_terraform_is_split_by_concern() -> None:
    assert {p.name for p in tf.tf_files()} == EXPECTED_FILES


def test_every_checkov_skip_says_why() -> None:
    skips = []
    for path in tf.tf_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "checkov" in line.lower() and "skip" in line.lower():
                match = _SKIP.search(line.strip())
                assert match is not None, f"{path.name}:{number}: unreadable skip {line!r}"
                check, reason = match.groups()
                assert re.fullmatch(r"CKV2?_AWS_\d+", check), f"{path.name}:{number}: {check}"
                assert reason and len(reason.strip()) >= 20, (
                    f"{path.name}:{number}: {check} is skipped without a reason"
                )
                skips.append(check)
    assert skips, "no skip found: the parser above is broken or checkov passes everything"


# --- functions and handlers ------------------------------------------------------------------


def test_lambda_tf_declares_exactly_the_nine_functions() -> None:
    entries = function_entries()
    assert {kind: entry["handler"] for kind, (_key, entry) in entries.items()} == HANDLERS
    assert function_resource()["handler"] == "${each.value.handler}"


@pytest.mark.parametrize("function", sorted(HANDLERS))
def test_each_handler_string_resolves_to_a_callable_in_the_code(function: str) -> None:
    handler = function_entry(function)["handler"]
    module_name, _, attribute = handler.rpartition(".")
    # A handler module that does not exist yet fails here: it must exist before this lands.
    module = importlib.import_module(module_name)
    assert callable(getattr(module, attribute, None)), f"{handler} is not callable"


@pytest.mark.parametrize("function", sorted(HANDLERS))
def test_each_function_runs_the_packaged_zip_on_python_3_12_arm64_with_tracing(
    function: str,
) -> None:
    body = function_resource()
    assert function_entry(function)["kind"] == function
    assert body["runtime"] == "python3.12"
    assert body["architectures"] == ["arm64"]
    assert body["filename"] == "${local.lambda_zip}"
    assert body["source_code_hash"] == "${local.lambda_zip_hash}"
    assert "dist/lambda.zip" in tf.local("lambda_zip")
    assert tf.block(body, "tracing_config")["mode"] == "Active"
    # The variables' attribute of the function's kind (asserted above to be `function`).
    assert body["memory_size"] == "${var.lambda_memory_mb[each.value.kind]}"
    assert body["timeout"] == "${var.lambda_timeout_seconds[each.value.kind]}"
    reserved = "${var.lambda_reserved_concurrency[each.value.kind]}"
    assert body["reserved_concurrent_executions"] == reserved
    logging = tf.block(body, "logging_config")
    assert logging["log_format"] == "JSON"
    # Its own log group and role: the instances of the same key.
    assert logging["log_group"] == "${aws_cloudwatch_log_group.function[each.key].name}"
    group = tf.resources("aws_cloudwatch_log_group")["function"]
    assert group["for_each"] == "${local.function_names}"
    assert tf.local("function_names").startswith("${{for key in keys(local.functions) : key => ")
    assert "kms_key_id" in group and group["retention_in_days"] == "${var.log_retention_days}"
    assert body["role"] == "${aws_iam_role.function[each.key].arn}"
    assert tf.resources("aws_iam_role")["function"]["for_each"] == "${local.function_names}"


# --- settings --------------------------------------------------------------------------------


def test_the_needed_settings_are_settings_the_code_reads() -> None:
    read = config_settings()
    needed = set().union(*NEEDED_SETTINGS.values())
    assert needed <= read, f"lambda.tf would set settings nobody reads: {needed - read}"
    # A new setting in config.py must be given to the functions that need it (or be local).
    unset = read - needed - LOCAL_ONLY_SETTINGS - NOT_THIS_STACKS_SETTINGS
    assert not unset, f"not given to any function: {unset}"


@pytest.mark.parametrize("function", sorted(HANDLERS))
def test_each_function_gets_exactly_the_citas_settings_it_needs(function: str) -> None:
    given = {k for k in environment(function) if k.startswith("CITAS_")}
    assert given == NEEDED_SETTINGS[function]
    assert environment(function)["CITAS_BACKEND"] == "aws"
    assert environment(function)["CITAS_TABLE_NAME"] == "${aws_dynamodb_table.citas.name}"


def test_the_settings_terraform_gives_are_accepted_by_the_code() -> None:
    countries = tf.variable_default("countries")
    zones = tf.variable_default("country_time_zones")
    assert tf.local("countries_setting") == (
        '${join(",", [for c in var.countries : "${c}=${var.country_time_zones[c]}"])}'
    )
    assert tf.local("booking_queue_urls_setting") == (
        '${join(",", [for c in var.countries : "${c}=${aws_sqs_queue.booking_requests[c].url}"])}'
    )
    assert environment("http_api")["CITAS_BOOKING_QUEUE_URLS"] == (
        "${local.booking_queue_urls_setting}"
    )
    assert environment("outbox_relay")["CITAS_EVENTS_QUEUE_URL"] == "${aws_sqs_queue.events.url}"
    # The country of the per-country entry (function_entries checks the for expression).
    assert environment("booking_worker")["CITAS_WORKER_COUNTRY"] == "${country}"
    for function in MESSAGE_SENDERS:
        assert environment(function)["CITAS_NOTIFIER"] in NOTIFIERS
        assert environment(function)["CITAS_NOTIFIER"] == "aws"
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/{}"
    for function in HANDLERS:
        values = {
            "CITAS_BACKEND": "aws",
            "CITAS_COUNTRIES": ",".join(f"{c}={zones[c]}" for c in countries),
            "CITAS_TABLE_NAME": "citas-dev",
            "CITAS_EVENTS_QUEUE_URL": url.format("citas-dev-events.fifo"),
            "CITAS_BOOKING_QUEUE_URLS": ",".join(f"{c}={url.format(c)}" for c in countries),
            "CITAS_WORKER_COUNTRY": countries[0],
            "CITAS_CLINICS_PARAMETER_PATH": "/citas-dev/clinics",
            "CITAS_NOTIFIER": environment("notifications")["CITAS_NOTIFIER"],
            # What the data source draws: 48 letters and digits.
            "CITAS_PAGE_TOKEN_KEY": "k" * 48,
            "CITAS_LINK_KEYS_PARAMETER": tf.render(
                tf.resources("aws_ssm_parameter")["link_keys"]["name"]
            ),
            "CITAS_SMS_ORIGINATION": "phone-0123456789abcdef0123456789abcdef",
            "CITAS_WHATSAPP_PHONE_NUMBER_ID": "phone-number-id-0123456789abcdef0123456789abcdef",
            "CITAS_PUBLIC_BASE_URL": "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/v1",
            "CITAS_HOLD_MINUTES": str(tf.variable_default("hold_minutes")),
        }
        settings = Settings.from_env({k: values[k] for k in NEEDED_SETTINGS[function]})
        assert settings.backend == "aws"
        assert set(settings.countries) == set(countries)
    # The deployment's hold is the code's default hold, and reaches the events consumer.
    assert tf.variable_default("hold_minutes") == Settings().hold_minutes == DEFAULT_HOLD_MINUTES
    assert environment("notifications")["CITAS_HOLD_MINUTES"] == "${var.hold_minutes}"


# --- permissions -----------------------------------------------------------------------------


def event_sources() -> list[tuple[str, str, dict[str, Any], Any]]:
    """(mapping name, function kind, mapping, its event source) of every event source.

    A mapping for one function names it (`aws_lambda_function.this["outbox_relay"]`); the
    `queue` mapping is one per function whose entry has a queue, that queue its source.
    """
    found = []
    for name, mapping in tf.resources("aws_lambda_event_source_mapping").items():
        if "for_each" in mapping:
            assert mapping["for_each"] == (
                "${{for key, fn in local.functions : key => fn if fn.queue != null}}"
            )
            assert mapping["function_name"] == "${aws_lambda_function.this[each.key].arn}"
            assert mapping["event_source_arn"] == "${each.value.queue.arn}"
            for kind, (_key, entry) in function_entries().items():
                if entry["queue"] is not None:
                    found.append((name, kind, mapping, entry["queue"]))
        else:
            assert tf.references(mapping["function_name"], "aws_lambda_function") == {"this"}
            for kind in function_keys_to_kinds(tf.lambda_keys(mapping["function_name"])):
                found.append((name, kind, mapping, mapping["event_source_arn"]))
    return found


def triggers(function: str) -> set[str]:
    """The resource types of the function's event sources (`aws_sqs_queue`, ...)."""
    found = set()
    for _name, kind, _mapping, source in event_sources():
        if kind == function:
            found |= {t for t in EVENT_SOURCE_ACTIONS if tf.references(source, t)}
    return found


def failure_destinations(function: str) -> set[str]:
    """Queues Lambda writes failures of the function to (DLQ, on-failure destination)."""
    (dead_letter,) = tf.blocks(function_resource(), "dynamic")
    assert dead_letter["dead_letter_config"]["for_each"] == (
        "${each.value.dead_letter_queue == null ? [] : [each.value.dead_letter_queue.arn]}"
    )
    found = tf.references(function_entry(function)["dead_letter_queue"] or "", "aws_sqs_queue")
    for _name, kind, mapping, _source in event_sources():
        if kind == function:
            for config in tf.blocks(mapping, "destination_config"):
                found |= tf.references(config, "aws_sqs_queue")
    return found


def test_the_stream_and_each_queue_trigger_the_right_function() -> None:
    mappings = tf.resources("aws_lambda_event_source_mapping")
    wiring = {
        (name, kind): tf.references(source, "aws_sqs_queue")
        | tf.references(source, "aws_dynamodb_table")
        for name, kind, _mapping, source in event_sources()
    }
    assert wiring == {
        ("outbox_stream", "outbox_relay"): {"citas"},
        ("queue", "booking_worker"): {"booking_requests"},
        ("queue", "notifications"): {"events"},
    }
    assert "stream_arn" in mappings["outbox_stream"]["event_source_arn"]
    # Each country's worker reads its own country's queue.
    assert function_entry("booking_worker")["queue"] == "${aws_sqs_queue.booking_requests[country]}"
    for mapping in mappings.values():
        assert mapping["function_response_types"] == ["ReportBatchItemFailures"]


def test_the_relay_sees_only_inserted_outbox_items() -> None:
    mapping = tf.resources("aws_lambda_event_source_mapping")["outbox_stream"]
    pattern = tf.block(tf.block(mapping, "filter_criteria"), "filter")["pattern"]
    assert pattern == "${jsonencode(local.outbox_stream_filter)}"
    assert tf.local("outbox_stream_filter") == {
        "eventName": ["INSERT"],
        "dynamodb": {"Keys": {"pk": {"S": [{"prefix": outbox_pk("")}]}}},
    }
    assert mapping["bisect_batch_on_function_error"] is True
    assert mapping["maximum_retry_attempts"] == "${var.stream_max_retries}"
    assert mapping["starting_position"] == "TRIM_HORIZON"
    table = tf.resources("aws_dynamodb_table")["citas"]
    # The relay decodes the event from the record's new image.
    assert table["stream_enabled"] is True
    assert table["stream_view_type"] in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES")


def test_reminders_run_every_15_minutes() -> None:
    rule = tf.resources("aws_cloudwatch_event_rule")["reminders"]
    assert rule["schedule_expression"] == "rate(15 minutes)"
    # The function under the old key is the confirmation cadence's tick.
    assert "cadence" in function_entry("reminders")["description"]
    target = tf.resources("aws_cloudwatch_event_target")["reminders"]
    assert tf.references(target["arn"], "aws_lambda_function") == {"this"}
    assert function_keys_to_kinds(tf.lambda_keys(target["arn"])) == {"reminders"}
    permission = tf.resources("aws_lambda_permission")["reminders_schedule"]
    assert permission["principal"] == "events.amazonaws.com"
    assert tf.references(permission["source_arn"], "aws_cloudwatch_event_rule") == {"reminders"}


def test_the_offers_sweeper_runs_every_minute_and_is_not_retried() -> None:
    rule = tf.resources("aws_cloudwatch_event_rule")["offers_sweeper"]
    assert rule["schedule_expression"] == "rate(1 minute)"
    target = tf.resources("aws_cloudwatch_event_target")["offers_sweeper"]
    assert tf.references(target["rule"], "aws_cloudwatch_event_rule") == {"offers_sweeper"}
    assert function_keys_to_kinds(tf.lambda_keys(target["arn"])) == {"offers_sweeper"}
    permission = tf.resources("aws_lambda_permission")["offers_sweeper_schedule"]
    assert permission["principal"] == "events.amazonaws.com"
    assert function_keys_to_kinds(tf.lambda_keys(permission["function_name"])) == {"offers_sweeper"}
    assert tf.references(permission["source_arn"], "aws_cloudwatch_event_rule") == {
        "offers_sweeper"
    }
    # The next run does what a failed one did not: a retry would only race it.
    invoke = tf.resources("aws_lambda_function_event_invoke_config")["offers_sweeper"]
    assert invoke["maximum_retry_attempts"] == 0
    assert function_keys_to_kinds(tf.lambda_keys(invoke["function_name"])) == {"offers_sweeper"}
    assert failure_destinations("offers_sweeper") == {"offers_sweeper_dlq"}
    assert function_entry("offers_sweeper")["queue"] is None


@pytest.mark.parametrize("function", sorted(HANDLERS))
def test_each_role_allows_exactly_the_data_calls_its_code_makes(function: str) -> None:
    expected = iam_actions(FUNCTION_ADAPTERS[function])
    for source in triggers(function):
        expected |= EVENT_SOURCE_ACTIONS[source]
    if failure_destinations(function):
        expected |= FAILURE_DESTINATION_ACTIONS
    granted = {a for a in statement_actions(policy(function)) if a.startswith(DATA_SERVICES)}
    assert granted == expected, (
        f"{function}: granted but never called {sorted(granted - expected)}, "
        f"called but not granted {sorted(expected - granted)}"
    )


@pytest.mark.parametrize("function", sorted(HANDLERS))
def test_each_role_reaches_only_its_own_resources(function: str) -> None:
    for statement in tf.policy_statements(policy(function)):
        actions = statement["actions"]
        where = statement.get("resources", [])
        services = {a.split(":")[0] for a in actions}
        assert len(services) == 1, f"{function}: one service per statement, got {actions}"
        service = services.pop()
        if where == ["*"]:
            # No resource ARN exists for these (X-Ray segments).
            assert set(actions) <= {
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
            }, f"{function}: {actions} on '*'"
        elif service == "logs":
            # Its own log group: function_basics' instance of its key (checked below).
            assert where == ["${aws_cloudwatch_log_group.function[each.key].arn}:*"]
        elif service == "dynamodb":
            assert tf.references(where, "aws_dynamodb_table") == {"citas"} or where == (
                "${local.table_resources}"
            )
        elif service == "sqs":
            assert tf.references(where, "aws_sqs_queue") <= FUNCTION_QUEUES[function]
        elif service == "kms":
            # The data key, granted only when the stack has one (a dynamic statement over it).
            assert where == ["${statement.value}"]
            assert tf.references(statement["dynamic_for_each"], "aws_kms_key") == {"citas"}
        elif service == "ssm":
            # The clinic directory's path, the link key ring, and nothing else (see
            # test_every_role_may_read_exactly_the_clinic_directory_path).
            assert where in (
                ["${local.clinics_parameter_arn}"],
                ["${aws_ssm_parameter.link_keys.arn}"],
            )
        elif service == "sms-voice":
            # The configured origination identities (messaging.tf), only if there are any.
            assert where == "${local.sms_origination_arns}"
            assert statement["dynamic_for_each"] == (
                '${length(local.sms_origination_arns) > 0 ? ["sms"] : []}'
            )
        elif service == "social-messaging":
            assert where == "${local.whatsapp_phone_number_arns}"
            assert statement["dynamic_for_each"] == (
                '${length(local.whatsapp_phone_number_arns) > 0 ? ["whatsapp"] : []}'
            )
        else:
            pytest.fail(f"{function}: unexpected service {service}")
    queues = set().union(
        *(
            tf.references(s.get("resources", []), "aws_sqs_queue")
            for s in tf.policy_statements(policy(function))
        )
    )
    assert queues == FUNCTION_QUEUES[function]
    # Its own basics, then what it does with links and messages, nothing else.
    shared = [("link_keys", None)] * (function in LINK_KEY_READERS)
    shared += [("send_messages", None)] * (function in MESSAGE_SENDERS)
    assert tf.source_documents(policy(function)) == [
        ("function_basics", own_index(function)),
        *shared,
    ]
    basics = tf.data_sources("aws_iam_policy_document")["function_basics"]
    assert basics["for_each"] == "${local.function_names}"
    assert tf.local("table_resources") == [
        "${aws_dynamodb_table.citas.arn}",
        "${aws_dynamodb_table.citas.arn}/index/*",
    ]


@pytest.mark.parametrize("function", sorted(HANDLERS))
def test_each_function_has_its_own_role_and_policy(function: str) -> None:
    attached = tf.resources("aws_iam_role_policy")["function"]
    assert attached["for_each"] == "${local.functions}"
    assert attached["role"] == "${aws_iam_role.function[each.key].id}"
    assert attached["policy"] == "${local.function_policies[each.key]}"
    # local.function_policies gives each function key its kind's document.
    documents = tf.text(tf.local("function_policies"))
    if own_index(function) == "each.key":
        assert (
            f"{{for key, document in data.aws_iam_policy_document.{function} : "
            "key => document.json}"
        ) in documents
    else:
        given = dict(re.findall(r"(\w+) = data\.aws_iam_policy_document\.(\w+)\.json", documents))
        assert given[function] == function


def test_no_policy_has_a_wildcard_action() -> None:
    documents = tf.data_sources("aws_iam_policy_document")
    assert documents
    for name, document in documents.items():
        for statement in tf.policy_statements(document):
            for action in statement.get("actions", []):
                assert "*" not in action, f"{name}: wildcard action {action}"


# --- table and queues ----------------------------------------------------------------------


def test_the_resources_the_tests_provision_are_the_ones_terraform_declares() -> None:
    countries = tf.variable_default("countries")
    project, environment_name = tf.variable_default("project"), tf.variable_default("environment")
    names = tf_resources.ResourceNames.for_environment(project, environment_name, countries)
    table = tf.resources("aws_dynamodb_table")["citas"]
    assert tf.render(table["name"]) == names.table
    queues = tf.resources("aws_sqs_queue")
    specs = tf_resources.load_queue_specs()
    # Every queue `citas provision` creates is a Terraform queue with the same physical name.
    for resource, spec in specs.items():
        body = queues[resource]
        if spec.per_country:
            local_name = re.fullmatch(r"\$\{local\.(\w+)\[each\.key\]\}", body["name"])
            assert local_name is not None, body["name"]
            variable, template = tf.for_expression_value(tf.local(local_name.group(1)))
            rendered = {c: tf.render(template, {variable: c}) for c in countries}
        else:
            rendered = {"": tf.render(body["name"])}
        assert rendered == names.queue_names(resource), resource
    # The other queues hold failed Lambda invocations: AWS-only, never provisioned locally.
    assert set(queues) - set(specs) == {
        "outbox_relay_failures",
        "reminders_dlq",
        "offers_sweeper_dlq",
        "inbound_sms_dlq",
        "inbound_whatsapp_dlq",
    }


def test_every_index_the_adapters_query_is_declared() -> None:
    spec = tf_resources.load_table_spec()
    declared = {index.name for index in spec.global_secondary_indexes}
    package = ROOT / "adapters" / "aws" / "dynamodb"
    source = "\n".join(p.read_text(encoding="utf-8") for p in sorted(package.rglob("*.py")))
    used = set(re.findall(r"\"(gsi\d+)\"", source))
    assert used, "the DynamoDB adapter queries no index: the pattern above is stale"
    assert used <= declared
    for index in used:
        assert f"{index}pk" in dict(spec.attributes) and f"{index}sk" in dict(spec.attributes)
    assert spec.ttl_attribute == "expires_at"


# --- API -------------------------------------------------------------------------------------


def openapi() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    return loaded


def openapi_operations() -> set[tuple[str, str]]:
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return {
        (method.upper(), path)
        for path, item in openapi()["paths"].items()
        for method in item
        if method in methods
    }


# The patient pages (CONTRACT.md "Patients answer"): in api/openapi.yaml, served by the
# patient_pages function, without an API key.
PAGE_OPERATIONS = {("GET", "/p/{token}"), ("POST", "/p/{token}/{action}")}


def api_gateway_operations() -> dict[tuple[str, str], dict[str, Any]]:
    """What api.tf's `api_paths` for-expression yields, evaluated here over the same file:
    each operation -> the function its integration invokes and what api.tf adds to it."""
    assert tf.local("openapi") == '${yamldecode(file("${path.module}/../../api/openapi.yaml"))}'
    assert tf.local("api_paths") == (
        "${{for path, item in local.openapi.paths : path => merge(item, "
        "{for method, operation in item : method => merge(operation, "
        '{"x-amazon-apigateway-integration" = local.api_integrations[startswith(path, '
        'local.page_path_prefix) ? "patient_pages" : "http_api"]}, '
        "{for key, value in local.page_operation : key => value if startswith(path, "
        "local.page_path_prefix)}) "
        "if contains(local.openapi_methods, method)})}}"
    )
    prefix = tf.local("page_path_prefix")
    assert prefix == "/p/"
    integrated = set(tf.local("openapi_methods"))
    return {
        (method.upper(), path): (
            {"function": "patient_pages", **tf.local("page_operation")}
            if path.startswith(prefix)
            else {"function": "http_api"}
        )
        for path, item in openapi()["paths"].items()
        for method in item
        if method in integrated
    }


def test_the_api_gateway_body_has_every_path_and_method_of_openapi_yaml() -> None:
    operations = api_gateway_operations()
    assert set(operations) == openapi_operations()
    # ... which are the routes the handlers serve: the pages' two, the HTTP API's the others.
    pages = {op for op, added in operations.items() if added["function"] == "patient_pages"}
    assert pages == PAGE_OPERATIONS, "api/openapi.yaml must describe exactly the two page routes"
    http_api = importlib.import_module("entrypoints.lambda.http_api")
    assert openapi_operations() - pages == http_api.served_routes()


def test_every_operation_proxies_to_its_function_and_is_validated() -> None:
    # Each integration invokes its function by the ARN its name gives: the invoke_arn,
    # without a reference to the function (whose settings name the API).
    integrations = tf.local("api_integrations")
    function_arns = tf.local("api_function_arns")
    assert function_arns == (
        '${{for key in ["http_api", "patient_pages"] : key => '
        '"arn:${data.aws_partition.current.partition}:lambda:${data.aws_region.current.name}:'
        "${data.aws_caller_identity.current.account_id}:function:"
        '${local.name_prefix}-${replace(key, "_", "-")}"}}'
    )
    # ... the same names as the functions' own (local.function_names).
    assert tf.local("function_names") == (
        "${{for key in keys(local.functions) : key => "
        '"${local.name_prefix}-${replace(key, "_", "-")}"}}'
    )
    assert integrations == (
        "${{for key, function_arn in local.api_function_arns : key => {"
        'type = "aws_proxy", httpMethod = "POST", '
        'uri = "arn:${data.aws_partition.current.partition}:apigateway:'
        "${data.aws_region.current.name}:lambda:path/2015-03-31/functions/${function_arn}/"
        'invocations", passthroughBehavior = "when_no_match", timeoutInMillis = 29000}}}'
    )
    assert not tf.references(tf.local("api_body"), "aws_lambda_function")
    assert not tf.references(integrations, "aws_lambda_function")
    body = tf.text(tf.local("api_body"))
    for extension in (
        '"x-amazon-apigateway-api-key-source" = "HEADER"',
        '"x-amazon-apigateway-request-validator" = "body-and-params"',
        "validateRequestBody = true",
        "validateRequestParameters = true",
        'name = "x-api-key"',
    ):
        assert extension in body, extension
    api = tf.resources("aws_api_gateway_rest_api")["citas"]
    assert api["body"] == "${jsonencode(local.api_body)}"
    # The document requires the key everywhere, so every method requires an API key, but
    # the patient pages: api.tf gives them `security: []` (no key, CONTRACT.md) and a
    # validator of parameters only (their bodies are HTML forms, not JSON).
    document = openapi()
    assert document["security"] == [{"api_key": []}]
    scheme = document["components"]["securitySchemes"]["api_key"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "x-api-key")
    assert tf.local("page_operation") == {
        "security": [],
        "x-amazon-apigateway-request-validator": "params-only",
    }
    assert "params-only = {validateRequestBody = false, validateRequestParameters = true}" in body
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if (method.upper(), path) in PAGE_OPERATIONS:
                assert operation.get("security") == [], f"{method} {path} needs the API key"
            elif isinstance(operation, dict) and "security" in operation:
                assert operation["security"], f"{method} {path} opts out of the API key"


def test_the_stage_is_logged_traced_throttled_and_behind_waf() -> None:
    stage = tf.resources("aws_api_gateway_stage")["citas"]
    assert stage["xray_tracing_enabled"] is True
    access = tf.block(stage, "access_log_settings")
    assert tf.references(access["destination_arn"], "aws_cloudwatch_log_group") == {"api_access"}
    assert "kms_key_id" in tf.resources("aws_cloudwatch_log_group")["api_access"]
    # Each clinic's plan: the clinic's own limits, or these defaults.
    plan = tf.resources("aws_api_gateway_usage_plan")["clinic"]
    throttle = tf.block(plan, "throttle_settings")
    assert throttle["rate_limit"] == (
        "${coalesce(each.value.throttle_rate_limit, var.api_throttle_rate_limit)}"
    )
    assert throttle["burst_limit"] == (
        "${coalesce(each.value.throttle_burst_limit, var.api_throttle_burst_limit)}"
    )
    assert tf.variable_default("api_throttle_rate_limit") == 100
    assert tf.variable_default("api_throttle_burst_limit") == 200
    quota = tf.block(plan, "quota_settings")
    assert (quota["limit"], quota["period"]) == (
        "${coalesce(each.value.quota_per_day, var.api_monthly_quota)}",
        '${each.value.quota_per_day == null ? "MONTH" : "DAY"}',
    )
    assert tf.resources("aws_api_gateway_usage_plan_key")["clinic"]["key_type"] == "API_KEY"
    acl = tf.resources("aws_wafv2_web_acl")["api"]
    managed = {
        tf.block(tf.block(rule, "statement"), "managed_rule_group_statement")["name"]
        for rule in tf.blocks(acl, "rule")
        if "managed_rule_group_statement" in tf.block(rule, "statement")
    }
    assert {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesSQLiRuleSet"} <= managed
    assert any("rate_based_statement" in tf.block(r, "statement") for r in tf.blocks(acl, "rule"))
    association = tf.resources("aws_wafv2_web_acl_association")["api"]
    assert tf.references(association["resource_arn"], "aws_api_gateway_stage") == {"citas"}
    # A page's path is a patient's link: the WAF's logs keep no path (nor the API key).
    logging = tf.resources("aws_wafv2_web_acl_logging_configuration")["api"]
    redacted = [key for block in tf.blocks(logging, "redacted_fields") for key in block]
    assert {"uri_path", "single_header"} <= set(redacted)
    permission = tf.resources("aws_lambda_permission")["api_gateway"]
    assert permission["principal"] == "apigateway.amazonaws.com"
    assert function_keys_to_kinds(tf.lambda_keys(permission["function_name"])) == {"http_api"}
    # The pages are on the same stage, so its WAF covers them: a rate rule with no
    # scope-down statement counts every request of every path.
    pages = tf.resources("aws_lambda_permission")["patient_pages"]
    assert pages["principal"] == "apigateway.amazonaws.com"
    assert function_keys_to_kinds(tf.lambda_keys(pages["function_name"])) == {"patient_pages"}
    assert pages["source_arn"] == (
        "${aws_api_gateway_rest_api.citas.execution_arn}/${var.api_stage_name}/*"
        "${local.page_path_prefix}*"
    )
    (rate,) = [
        tf.block(tf.block(r, "statement"), "rate_based_statement")
        for r in tf.blocks(acl, "rule")
        if "rate_based_statement" in tf.block(r, "statement")
    ]
    assert "scope_down_statement" not in rate and rate["aggregate_key_type"] == "IP"


# --- clinics ---------------------------------------------------------------------------------

# The resources of which there is one per clinic (`for_each = var.clinics`).
CLINIC_RESOURCES = (
    "aws_api_gateway_api_key",
    "aws_api_gateway_usage_plan",
    "aws_api_gateway_usage_plan_key",
    "aws_ssm_parameter",
)
CLINICS_TYPE = (
    "${map(object({name = string, public_base_url = optional(string), "
    'channels = optional(list(string), ["sms"]), sms_number = optional(string), '
    "whatsapp_phone_number_id = optional(string), hold_minutes = optional(number), "
    "quota_per_day = optional(number), throttle_rate_limit = optional(number), "
    "throttle_burst_limit = optional(number)}))}"
)


def clinics_validations() -> list[str]:
    """The condition of each validation block of var.clinics."""
    return [v["condition"] for v in tf.blocks(tf.tree()["variable"]["clinics"], "validation")]


def terraform_regex(condition: str, argument: str) -> re.Pattern[str]:
    """The pattern of `regex("<pattern>", <argument>)` in a condition, for Python's `re`.

    Terraform's regex is RE2, whose `$` is the end of the text only; Python's `$` also
    matches before a final newline, so it becomes `\\Z`.
    """
    found = re.findall(rf'regex\("((?:[^"\\]|\\.)*)", {re.escape(argument)}\)', condition)
    assert len(found) == 1, condition
    source = found[0].replace("\\\\", "\\")
    assert source.endswith("$"), source
    return re.compile(source[:-1] + r"\Z")


def domain_accepts(
    clinic_id: str = "demo", name: str = "Clínica", url: str | None = None, **more: Any
) -> bool:
    try:
        ClinicProfile(clinic_id, name, url, **more)
    except ValidationError:
        return False
    return True


def test_the_default_clinic_is_the_demo_clinic_of_the_code() -> None:
    variable = tf.tree()["variable"]["clinics"]
    assert variable["type"] == CLINICS_TYPE
    assert tf.variable_default("clinics") == {DEMO_CLINIC.clinic_id: {"name": DEMO_CLINIC.name}}


def test_the_clinics_variable_needs_at_least_one_clinic() -> None:
    assert "${length(var.clinics) > 0}" in clinics_validations()


# Values each check must accept or refuse exactly as domain/clinics.py does.
SAMPLE_IDS = (
    *("demo", "clinica-sol", "c1", "--", "a" * 40, "a", "a" * 41, "", "Clinica", "clinica_sol"),
    *("clínica", "sol\n", " sol", "sol/x", "sol.x", "\uff11\uff12"),
)
SAMPLE_NAMES = (
    *("Clínica Sol", "x", "x" * 80, "x" * 81, "", "   ", "Clínica\nSol", "a\tb", "a\x85b"),
    *("a\u2028b", "a\u2029b", " Clínica Sol "),
)
SAMPLE_URLS = (
    *("https://sol.example", "http://x", "https://sol.example/citas?a=1", "ftp://x", "https://"),
    *("https://a b", "https://sol.example/ñ", "HTTPS://x", "https://x\n", "sol.example"),
)


@pytest.mark.parametrize("clinic_id", SAMPLE_IDS)
def test_the_clinics_variable_refuses_exactly_the_ids_the_code_refuses(clinic_id: str) -> None:
    (condition,) = [c for c in clinics_validations() if "keys(var.clinics)" in c]
    assert condition.startswith("${alltrue([for id in keys(var.clinics) : can(regex(")
    accepted = terraform_regex(condition, "id").search(clinic_id) is not None
    assert accepted == domain_accepts(clinic_id=clinic_id)


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_the_clinics_variable_refuses_exactly_the_names_the_code_refuses(name: str) -> None:
    assert MAX_CLINIC_NAME == 80
    (condition,) = [c for c in clinics_validations() if "c.name" in c]
    assert condition == (
        "${alltrue([for c in values(var.clinics) : length(trimspace(c.name)) >= 1 && "
        "length(c.name) <= 80 && "
        '!can(regex("[\\\\p{Cc}\\\\p{Zl}\\\\p{Zp}]", c.name))])}'
    )
    # What that condition computes, in Python (\p{Cc} is U+0000-001F and U+007F-009F).
    refused = re.search("[\x00-\x1f\x7f-\x9f\u2028\u2029]", name) is not None
    accepted = len(name.strip()) >= 1 and len(name) <= MAX_CLINIC_NAME and not refused
    assert accepted == domain_accepts(name=name)


@pytest.mark.parametrize("url", SAMPLE_URLS)
def test_the_clinics_variable_refuses_exactly_the_urls_the_code_refuses(url: str) -> None:
    (condition,) = [c for c in clinics_validations() if "c.public_base_url" in c]
    assert condition.startswith(
        "${alltrue([for c in values(var.clinics) : c.public_base_url == null || can(regex("
    )
    accepted = terraform_regex(condition, "c.public_base_url").search(url) is not None
    assert accepted == domain_accepts(url=url)


# Channels, numbers and WhatsApp ids, for the checks below.
SAMPLE_CHANNELS = (
    ["sms"], ["whatsapp"], ["whatsapp", "sms"], ["sms", "whatsapp"], [], ["sms", "sms"],
    ["SMS"], ["email"], ["sms", "email"], [" sms"],
)  # fmt: skip
SAMPLE_NUMBERS = (
    *("+51987654321", "+12125550101", "+1234567", "+12345678", "+123456789012345"),
    *("+1234567890123456", "51987654321", "+0987654321", "+51 987654321", "+51987654321\n"),
    *("", "+", "+\uff15\uff11987654321"),
)
SAMPLE_WHATSAPP_IDS = (
    "phone-number-id-0123456789abcdef0123456789abcdef",
    "arn:aws:social-messaging:us-east-1:123456789012:phone-number-id/0123456789abcdef",
    "arn:aws-us-gov:social-messaging:us-gov-west-1:123456789012:phone-number-id/abc",
    *("phone-number-id-", "phone-number-id-ab_cd", "0123456789", "waba-0123", ""),
    *("arn:aws:social-messaging:us-east-1:123456789012:waba/0123", "phone-number-id-x\n"),
    "arn:aws:social-messaging:us-east-1:12345:phone-number-id/abc",
)


def clinics_condition(attribute: str) -> str:
    (condition,) = [
        c for c in clinics_validations() if f"c.{attribute} " in c and "distinct(numbers)" not in c
    ]
    return condition


def channels_accepted(channels: list[str]) -> bool:
    """What the channels condition of var.clinics computes, in Python."""
    return (
        len(channels) > 0
        and len(set(channels)) == len(channels)
        and all(c in ("sms", "whatsapp") for c in channels)
    )


@pytest.mark.parametrize("channels", SAMPLE_CHANNELS, ids=repr)
def test_the_clinics_variable_refuses_exactly_the_channels_the_code_refuses(
    channels: list[str],
) -> None:
    assert clinics_condition("channels") == (
        "${alltrue([for c in values(var.clinics) : length(c.channels) > 0 && "
        "length(distinct(c.channels)) == length(c.channels) && "
        'alltrue([for channel in c.channels : contains(["sms", "whatsapp"], channel)])])}'
    )
    assert channels_accepted(channels) == domain_accepts(channels=tuple(channels))
    # The default is the code's default.
    assert ClinicProfile("demo", "Clínica").channels == ("sms",)
    assert '["sms"]' in CLINICS_TYPE


@pytest.mark.parametrize("number", SAMPLE_NUMBERS, ids=repr)
def test_the_clinics_variable_refuses_exactly_the_sms_numbers_the_code_refuses(
    number: str,
) -> None:
    condition = clinics_condition("sms_number")
    assert condition.startswith(
        "${alltrue([for c in values(var.clinics) : c.sms_number == null || can(regex("
    )
    accepted = terraform_regex(condition, "c.sms_number").search(number) is not None
    assert accepted == domain_accepts(sms_number=number)


@pytest.mark.parametrize("number_id", SAMPLE_WHATSAPP_IDS, ids=repr)
def test_the_clinics_variable_accepts_only_whatsapp_ids_the_code_and_iam_accept(
    number_id: str,
) -> None:
    condition = clinics_condition("whatsapp_phone_number_id")
    accepted = terraform_regex(condition, "c.whatsapp_phone_number_id").search(number_id)
    # Stricter than the code: only the two forms messaging.tf turns into the number's ARN,
    # which are also the two SendWhatsAppMessage and the inbound events use. Never one the
    # code refuses (a refused clinic would be dropped from the directory).
    if accepted is not None:
        assert domain_accepts(whatsapp_phone_number_id=number_id)
        assert number_id.startswith(("phone-number-id-", "arn:"))
    # The deployment's default accepts exactly the same.
    (default,) = [
        v["condition"]
        for v in tf.blocks(tf.tree()["variable"]["whatsapp_phone_number_id"], "validation")
    ]
    same = terraform_regex(default, "var.whatsapp_phone_number_id").search(number_id)
    assert (same is None) == (accepted is None)


SAMPLE_HOLDS = (1, 30, 1440, 0, -5, 1441, 2.5, 30.0)


def hold_accepted(hold: float) -> bool:
    """What the hold_minutes condition of var.clinics computes, in Python."""
    return 1 <= hold <= 1440 and math.floor(hold) == hold


@pytest.mark.parametrize("hold", SAMPLE_HOLDS, ids=repr)
def test_the_clinics_variable_refuses_exactly_the_holds_the_code_refuses(hold: float) -> None:
    (condition,) = [c for c in clinics_validations() if "c.hold_minutes" in c]
    assert condition == (
        "${alltrue([for c in values(var.clinics) : c.hold_minutes == null || "
        "try(c.hold_minutes >= 1 && c.hold_minutes <= 1440 && "
        "floor(c.hold_minutes) == c.hold_minutes, false)])}"
    )
    # Terraform's numbers are whole or not by value: 30.0 is jsonencoded as 30, an int.
    written = json.loads(json.dumps(int(hold) if float(hold).is_integer() else hold))
    assert hold_accepted(hold) == domain_accepts(hold_minutes=written)
    # The deployment's default takes the same values (and CITAS_HOLD_MINUTES in the code).
    (default,) = [
        v["condition"] for v in tf.blocks(tf.tree()["variable"]["hold_minutes"], "validation")
    ]
    assert default == (
        "${var.hold_minutes >= 1 && var.hold_minutes <= 1440 && "
        "floor(var.hold_minutes) == var.hold_minutes}"
    )
    assert MAX_HOLD_MINUTES == 1440


def test_no_two_clinics_share_a_sending_number() -> None:
    (condition,) = [c for c in clinics_validations() if "distinct(numbers)" in c]
    for attribute in ("sms_number", "whatsapp_phone_number_id"):
        assert f"c.{attribute} if c.{attribute} != null" in condition


def test_a_clinic_on_whatsapp_has_a_number_to_send_from() -> None:
    parameter = tf.resources("aws_ssm_parameter")["clinic"]
    (precondition,) = tf.blocks(tf.block(parameter, "lifecycle"), "precondition")
    assert precondition["condition"] == (
        '${!contains(each.value.channels, "whatsapp") || '
        "each.value.whatsapp_phone_number_id != null || var.whatsapp_phone_number_id != null}"
    )


def test_the_clinics_variable_refuses_limits_api_gateway_refuses() -> None:
    (condition,) = [c for c in clinics_validations() if "quota_per_day" in c]
    for rule in (
        "c.quota_per_day == null || try(c.quota_per_day >= 1 && "
        "floor(c.quota_per_day) == c.quota_per_day, false)",
        "c.throttle_rate_limit == null || try(c.throttle_rate_limit >= 0, false)",
        "c.throttle_burst_limit == null || try(c.throttle_burst_limit >= 0 && "
        "floor(c.throttle_burst_limit) == c.throttle_burst_limit, false)",
    ):
        assert rule in condition, rule


def test_there_is_one_api_key_usage_plan_plan_key_and_parameter_per_clinic() -> None:
    for type_name in CLINIC_RESOURCES:
        declared = tf.resources(type_name)
        if type_name == "aws_ssm_parameter":
            # The page-token key and the link key ring are the others (lambda.tf).
            declared.pop("page_token_key")
            declared.pop("link_keys")
        assert set(declared) == {"clinic"}, (type_name, sorted(declared))
        assert declared["clinic"]["for_each"] == "${var.clinics}", type_name
    key = tf.resources("aws_api_gateway_api_key")["clinic"]
    assert key["name"] == "${local.name_prefix}-${each.key}"
    assert key["enabled"] is True
    names = {"project": tf.variable_default("project"), "env": tf.variable_default("environment")}
    assert tf.render(key["name"], {"each.key": "demo"}) == "{project}-{env}-demo".format(**names)
    # Each clinic's key in its own plan, on the API's stage.
    member = tf.resources("aws_api_gateway_usage_plan_key")["clinic"]
    assert member["key_id"] == "${aws_api_gateway_api_key.clinic[each.key].id}"
    assert member["usage_plan_id"] == "${aws_api_gateway_usage_plan.clinic[each.key].id}"
    assert member["key_type"] == "API_KEY"
    plan = tf.resources("aws_api_gateway_usage_plan")["clinic"]
    assert tf.block(plan, "api_stages") == {
        "api_id": "${aws_api_gateway_rest_api.citas.id}",
        "stage": "${aws_api_gateway_stage.citas.stage_name}",
    }


def test_a_clinic_without_limits_of_its_own_gets_the_default_ones() -> None:
    plan = tf.resources("aws_api_gateway_usage_plan")["clinic"]
    limits = {**tf.block(plan, "throttle_settings"), **tf.block(plan, "quota_settings")}
    expected = {
        "rate_limit": ("throttle_rate_limit", "api_throttle_rate_limit"),
        "burst_limit": ("throttle_burst_limit", "api_throttle_burst_limit"),
        "limit": ("quota_per_day", "api_monthly_quota"),
    }
    for attribute, (own, default) in expected.items():
        assert limits[attribute] == f"${{coalesce(each.value.{own}, var.{default})}}"
    # A quota per day if the clinic has one, else the monthly default.
    assert limits["period"] == '${each.value.quota_per_day == null ? "MONTH" : "DAY"}'
    assert "quota_per_day" in CLINICS_TYPE and "api_monthly_quota" in tf.tree()["variable"]


def test_the_stacks_one_key_plan_and_plan_key_become_the_demo_clinics() -> None:
    moves = {
        block["from"]: block["to"]
        for block in tf_resources.parse_tf_file(tf.TF_DIR / "moved.tf")["moved"]
    }
    for type_name in CLINIC_RESOURCES[:3]:
        assert moves[f"${{{type_name}.citas}}"] == f'${{{type_name}.clinic["demo"]}}'
        assert "citas" not in tf.resources(type_name)
    assert "demo" in tf.variable_default("clinics")


def test_each_clinic_parameter_maps_the_id_of_its_own_api_key_to_the_clinic() -> None:
    parameter = tf.resources("aws_ssm_parameter")["clinic"]
    # One level under the path, which is what a non-recursive GetParametersByPath reads.
    assert parameter["name"] == "${local.clinics_parameter_path}/${each.key}"
    assert parameter["type"] == "String"
    assert "value" not in parameter
    value = tf.call_object(parameter["insecure_value"], "jsonencode")
    assert value == {
        "clinic_id": "${each.key}",
        "name": "${each.value.name}",
        "api_key_id": "${aws_api_gateway_api_key.clinic[each.key].id}",
        "public_base_url": "${each.value.public_base_url}",
        "channels": "${each.value.channels}",
        "sms_number": "${each.value.sms_number}",
        "whatsapp_phone_number_id": "${each.value.whatsapp_phone_number_id}",
        "hold_minutes": "${each.value.hold_minutes}",
    }
    # That value, for the default clinic, is what the adapter reads (optional attributes at
    # their defaults: channels ["sms"], no numbers).
    (clinic_id, clinic), *_ = tf.variable_default("clinics").items()
    written = {
        "clinic_id": clinic_id,
        "name": clinic["name"],
        "api_key_id": "kqmbxvqkme",
        "public_base_url": clinic.get("public_base_url"),
        "channels": clinic.get("channels", ["sms"]),
        "sms_number": clinic.get("sms_number"),
        "whatsapp_phone_number_id": clinic.get("whatsapp_phone_number_id"),
        "hold_minutes": clinic.get("hold_minutes"),
    }
    path = tf.render(tf.local("clinics_parameter_path"))
    profile, key_id = parse_clinic_parameter(f"{path}/{clinic_id}", json.dumps(written))
    assert (profile, key_id) == (ClinicProfile(clinic_id, clinic["name"]), "kqmbxvqkme")
    # ... and a clinic with every attribute set.
    full = {
        **written,
        "channels": ["whatsapp", "sms"],
        "sms_number": "+51987654321",
        "whatsapp_phone_number_id": "phone-number-id-0123456789abcdef0123456789abcdef",
        "hold_minutes": 45,
    }
    profile, _ = parse_clinic_parameter(f"{path}/{clinic_id}", json.dumps(full))
    assert profile == ClinicProfile(
        clinic_id,
        clinic["name"],
        channels=("whatsapp", "sms"),
        sms_number="+51987654321",
        whatsapp_phone_number_id="phone-number-id-0123456789abcdef0123456789abcdef",
        hold_minutes=45,
    )


@pytest.mark.parametrize("function", sorted(HANDLERS))
def test_every_function_gets_the_clinics_parameter_path(function: str) -> None:
    assert environment(function)["CITAS_CLINICS_PARAMETER_PATH"] == (
        "${local.clinics_parameter_path}"
    )
    assert "CITAS_CLINICS_PARAMETER_PATH" in tf.local("function_environment")
    project, env = tf.variable_default("project"), tf.variable_default("environment")
    assert tf.render(tf.local("clinics_parameter_path")) == f"/{project}-{env}/clinics"


@pytest.mark.parametrize("function", sorted(HANDLERS))
def test_every_role_may_read_exactly_the_clinic_directory_path(function: str) -> None:
    ssm = [
        statement
        for statement in tf.policy_statements(policy(function))
        if any(a.startswith("ssm:") for a in statement["actions"])
    ]
    # The signers of links may also read the key ring's own parameter, nothing more.
    link_keys = [(["ssm:GetParameter"], ["${aws_ssm_parameter.link_keys.arn}"])]
    assert [(s["actions"], s["resources"]) for s in ssm] == [
        (["ssm:GetParametersByPath"], ["${local.clinics_parameter_arn}"]),
        *link_keys * (function in LINK_KEY_READERS),
    ]
    for statement in ssm:
        assert "condition" not in statement and statement.get("effect", "Allow") == "Allow"
    # GetParametersByPath is authorised against the path as called, so the grant is the
    # path's own ARN: no wildcard, no other parameter.
    assert tf.local("clinics_parameter_arn") == (
        "arn:${data.aws_partition.current.partition}:ssm:${data.aws_region.current.name}:"
        "${data.aws_caller_identity.current.account_id}:parameter${local.clinics_parameter_path}"
    )
    assert tf.render(tf.local("clinics_parameter_path")).startswith("/")


def test_the_functions_wait_for_the_clinic_directory_without_a_cycle() -> None:
    assert "${aws_ssm_parameter.clinic}" in function_resource()["depends_on"]
    # Neither the keys nor the parameters depend on a function, so this adds no cycle.
    for type_name in ("aws_api_gateway_api_key", "aws_ssm_parameter"):
        assert not tf.references(tf.resources(type_name)["clinic"], "aws_lambda_function")
    assert tf.references(tf.resources("aws_ssm_parameter")["clinic"], "aws_api_gateway_api_key")
    assert not tf.references(tf.resources("aws_api_gateway_api_key")["clinic"], "aws_")


# --- alarms and outputs ----------------------------------------------------------------------


# Each family of alarms of monitoring.tf (a local of local.alarms), by the name its alarms had
# as resources of their own before they became instances of aws_cloudwatch_metric_alarm.this.
ALARM_FAMILIES = {
    "api_5xx_rate": ("api_alarms", "api-5xx-rate"),
    "api_latency_p95": ("api_alarms", "api-latency-p95"),
    "outbox_relay_iterator_age": ("outbox_relay_alarms", "outbox-relay-iterator-age"),
    "lambda_errors": ("function_error_alarms", None),
    "lambda_throttles": ("function_throttle_alarms", None),
    "dead_letters": ("dead_letter_alarms", None),
    "queue_age": ("queue_age_alarms", None),
}


def alarm_definitions() -> dict[str, dict[str, Any]]:
    """Each family of alarms -> its definition with the attributes of the one alarm resource.

    A family from a for expression gets `for_each`, the map it iterates; every attribute the
    resource sets for all alarms (actions, comparison, period) is read from the resource.
    """
    resources = tf.resources("aws_cloudwatch_metric_alarm")
    assert set(resources) == {"this"}, sorted(resources)
    resource = resources["this"]
    # Every alarm, or none without var.enable_alarms (prod by default).
    assert resource["for_each"] == (
        "${{for key, alarm in local.alarms : key => alarm if local.enable_alarms}}"
    )
    families = sorted({family for family, _key in ALARM_FAMILIES.values()})
    merged = tf.local("alarms")
    assert merged.startswith("${merge(local."), merged
    assert sorted(re.findall(r"local\.(\w+)", merged)) == families, merged
    definitions = {}
    for name, (family, key) in ALARM_FAMILIES.items():
        value = tf.local(family)
        if key is not None:
            definition = dict(value[key])
        else:
            _variables, _key, definition = tf.for_object(value)
            iterated = re.match(r"\$\{\{for \w+, \w+ in (local\.\w+) :", value)
            assert iterated is not None, value
            definition["for_each"] = "${" + iterated.group(1) + "}"
        for attribute, expression in resource.items():
            if attribute in ("for_each", "alarm_name"):
                continue
            field = re.fullmatch(r"\$\{each\.value\.(\w+)\}", str(expression))
            default = re.fullmatch(r'\$\{lookup\(each\.value, "(\w+)", (.+)\)\}', str(expression))
            if field is not None:
                definition[attribute] = definition[field.group(1)]
            elif default is not None:
                fallback = default.group(2)
                fallback_value = None if fallback == "null" else json.loads(fallback)
                definition.setdefault(attribute, fallback_value)
            else:
                definition[attribute] = expression
        definitions[name] = definition
    return definitions


def test_every_function_and_every_dead_letter_queue_has_alarms() -> None:
    # Every instance of aws_lambda_function.this, none filtered out: each of local.functions.
    alarmed = tf.text(tf.local("alarmed_functions"))
    assert alarmed.startswith("${{for key, fn in aws_lambda_function.this : ")
    assert " if " not in alarmed
    for function in HANDLERS:
        assert function in function_entries(), function
    alarms = alarm_definitions()
    assert alarms["lambda_errors"]["metric_name"] == "Errors"
    assert alarms["lambda_throttles"]["metric_name"] == "Throttles"
    for alarm in ("lambda_errors", "lambda_throttles"):
        assert alarms[alarm]["for_each"] == "${local.alarmed_functions}"
    # A dead-letter queue: the target of a redrive policy, a function DLQ or a failure
    # destination. Every one of them is watched.
    queues = tf.resources("aws_sqs_queue")
    dead_letter = {
        name
        for body in queues.values()
        for name in tf.references(body.get("redrive_policy", ""), "aws_sqs_queue")
    }
    for function in HANDLERS:
        dead_letter |= failure_destinations(function)
    watched = tf.references(tf.local("dead_letter_queues"), "aws_sqs_queue")
    assert dead_letter and dead_letter == watched
    assert alarms["dead_letters"]["metric_name"] == "ApproximateNumberOfMessagesVisible"
    assert alarms["dead_letters"]["threshold"] == 0
    aged = tf.references(tf.local("worked_queues"), "aws_sqs_queue")
    assert "booking_requests" in aged
    assert alarms["queue_age"]["metric_name"] == "ApproximateAgeOfOldestMessage"
    assert alarms["api_5xx_rate"]["metric_name"] == "5XXError"
    assert alarms["api_latency_p95"]["extended_statistic"] == "p95"
    assert tf.variable_default("api_latency_p95_threshold_ms") == 500
    for body in alarms.values():
        assert body["alarm_actions"] == "${local.alarm_actions}"
        assert body["ok_actions"] == "${local.alarm_actions}"
    topic = tf.resources("aws_sns_topic")["alarms"]
    assert "kms_master_key_id" in topic
    subscription = tf.resources("aws_sns_topic_subscription")["alarm_email"]
    assert subscription["count"] == '${local.enable_alarms && var.alarm_email != "" ? 1 : 0}'


def test_the_outputs_name_the_api_the_key_the_table_and_the_queues() -> None:
    outputs = tf.tree()["output"]
    assert outputs["api_url"]["value"] == "${aws_api_gateway_stage.citas.invoke_url}"
    assert outputs["clinic_api_key_ids"]["value"] == (
        "${{for id, key in aws_api_gateway_api_key.clinic : id => key.id}}"
    )
    assert outputs["clinic_api_keys"]["value"] == (
        "${{for id, key in aws_api_gateway_api_key.clinic : id => key.value}}"
    )
    assert outputs["clinic_api_keys"]["sensitive"] is True
    assert outputs["table_name"]["value"] == "${aws_dynamodb_table.citas.name}"
    for name in ("events_queue_url", "booking_queue_urls", "booking_queue_names"):
        assert name in outputs
    # What an operator points the numbers at, and where links and their keys are.
    assert outputs["inbound_sms_topic_arn"]["value"] == "${aws_sns_topic.inbound_sms.arn}"
    assert outputs["inbound_whatsapp_topic_arn"]["value"] == (
        "${aws_sns_topic.inbound_whatsapp.arn}"
    )
    assert outputs["public_base_url"]["value"] == "${local.public_base_url}"
    assert outputs["link_keys_parameter"]["value"] == "${aws_ssm_parameter.link_keys.name}"
    dead_letters = tf.references(outputs["dead_letter_queue_urls"]["value"], "aws_sqs_queue")
    assert dead_letters == tf.references(tf.local("dead_letter_queues"), "aws_sqs_queue")


def test_destroy_resets_the_regions_api_gateway_logging_role() -> None:
    # Without it, `terraform destroy` leaves the account setting naming a deleted role.
    account = tf.resources("aws_api_gateway_account")["citas"]
    assert account["reset_on_delete"] is True


def test_gateway_responses_give_their_status_codes_as_strings() -> None:
    body = tf.text(tf.local("api_body"))
    codes = re.findall(r"statusCode = (\"?\w+\"?)", body)
    assert codes and all(c.startswith('"') and c.strip('"').isdigit() for c in codes), codes


def test_the_page_token_key_is_generated_once_and_kept_secret() -> None:
    parameter = tf.resources("aws_ssm_parameter")["page_token_key"]
    assert parameter["type"] == "SecureString"
    assert parameter["key_id"] == "${local.data_key_arn}"
    # A new key each plan would invalidate every page in flight and never settle the plan.
    assert tf.block(parameter, "lifecycle")["ignore_changes"] == ["value"]
    assert environment("http_api")["CITAS_PAGE_TOKEN_KEY"] == (
        "${aws_ssm_parameter.page_token_key.value}"
    )
    functions_with_key = [f for f in HANDLERS if "CITAS_PAGE_TOKEN_KEY" in environment(f)]
    assert functions_with_key == ["http_api"]


# --- patients' links ---------------------------------------------------------------------------


def test_the_link_keys_are_generated_once_kept_secret_and_read_by_their_users() -> None:
    parameter = tf.resources("aws_ssm_parameter")["link_keys"]
    assert parameter["type"] == "SecureString"
    assert parameter["key_id"] == "${local.data_key_arn}"
    # An operator's rotation is never undone by an apply (nor the plan unsettled by the
    # data source's new draw).
    assert tf.block(parameter, "lifecycle")["ignore_changes"] == ["value"]
    assert tf.call_object(parameter["value"], "jsonencode") == {
        "current": "k1",
        "keys": {"k1": "${data.aws_secretsmanager_random_password.link_key.random_password}"},
    }
    drawn = tf.data_sources("aws_secretsmanager_random_password")["link_key"]
    assert drawn["password_length"] >= 43 and drawn["exclude_punctuation"] is True
    assert drawn.get("include_space", False) is False
    # What the data source draws (letters and digits) is a ring the adapter reads, of a key
    # of at least 32 bytes.
    sample = ("Ab3" * 20)[: drawn["password_length"]]
    ring = parse_key_ring(json.dumps({"current": "k1", "keys": {"k1": sample}}))
    assert ring.current.key_id == "k1" and len(ring.current.secret) >= 32
    # The functions that sign or check links get the parameter's name...
    readers = {f for f in HANDLERS if "CITAS_LINK_KEYS_PARAMETER" in environment(f)}
    assert readers == LINK_KEY_READERS
    assert tf.local("link_keys_environment") == {
        "CITAS_LINK_KEYS_PARAMETER": "${aws_ssm_parameter.link_keys.name}"
    }
    # ... and may read that parameter alone (its KMS Decrypt is function_basics' UseDataKey).
    document = tf.data_sources("aws_iam_policy_document")["link_keys"]
    assert tf.blocks(document, "statement") == [
        {
            "sid": "ReadLinkKeys",
            "actions": ["ssm:GetParameter"],
            "resources": ["${aws_ssm_parameter.link_keys.arn}"],
        }
    ]
    # With a key of ours, every function may decrypt with it (a dynamic statement over the
    # key: none without one, where SSM's own aws/ssm key needs no grant).
    basics = tf.data_sources("aws_iam_policy_document")["function_basics"]
    (data_key,) = [
        {**content, "for_each": for_each}
        for for_each, content in tf.dynamic_blocks(basics, "statement")
        if content["sid"] == "UseDataKey"
    ]
    assert "kms:Decrypt" in data_key["actions"]
    assert data_key["resources"] == ["${statement.value}"]
    assert data_key["for_each"] == "${aws_kms_key.citas[*].arn}"
    # The rotation is written down next to it.
    source = (tf.TF_DIR / "lambda.tf").read_text(encoding="utf-8")
    assert "Rotating" in source and "current" in source


# --- patients' messages ------------------------------------------------------------------------


def test_the_senders_get_the_messaging_settings_and_the_stage_url() -> None:
    assert tf.local("messaging_environment") == {
        "CITAS_NOTIFIER": "aws",
        "CITAS_SMS_ORIGINATION": "${var.sms_origination_identity}",
        "CITAS_WHATSAPP_PHONE_NUMBER_ID": "${var.whatsapp_phone_number_id}",
        "CITAS_PUBLIC_BASE_URL": "${local.public_base_url}",
    }
    senders = {f for f in HANDLERS if "CITAS_NOTIFIER" in environment(f)}
    assert senders == MESSAGE_SENDERS
    # Not configured: null, which the function resource leaves out (see environment()).
    for name in ("sms_origination_identity", "whatsapp_phone_number_id"):
        assert name in tf.tree()["variable"] and tf.variable_default(name) is None
    # The stage's invoke URL, from the API's id: neither the stage nor its deployment,
    # which come after the functions.
    url = tf.local("public_base_url")
    assert url == (
        "https://${aws_api_gateway_rest_api.citas.id}.execute-api."
        "${data.aws_region.current.name}.${data.aws_partition.current.dns_suffix}"
        "/${var.api_stage_name}"
    )
    assert not tf.references(url, "aws_api_gateway_stage")
    assert not tf.references(url, "aws_api_gateway_deployment")
    # The API names no function (see test_every_operation_proxies_to_its_function_and_is_
    # validated); its deployment waits for them.
    deployment = tf.resources("aws_api_gateway_deployment")["citas"]
    assert "${aws_lambda_function.this}" in deployment["depends_on"]


def test_the_senders_may_send_only_from_the_configured_identities() -> None:
    document = tf.data_sources("aws_iam_policy_document")["send_messages"]
    assert not tf.blocks(document, "statement")
    assert [
        (content["sid"], content["actions"])
        for _, content in tf.dynamic_blocks(document, "statement")
    ] == [
        ("SendSms", ["sms-voice:SendTextMessage"]),
        ("SendWhatsApp", ["social-messaging:SendWhatsAppMessage"]),
    ]
    for function in HANDLERS:
        sources = {name for name, _ in tf.source_documents(policy(function))}
        assert ("send_messages" in sources) == (function in MESSAGE_SENDERS), function
    # The ARNs SendTextMessage and SendWhatsAppMessage are authorised against (Service
    # Authorization Reference): phone-number/<PhoneNumberId>, pool/<PoolId>,
    # sender-id/<SenderId>/<IsoCountryCode>; phone-number-id/<id>.
    prefix = tf.local("sms_arn_prefix")
    assert prefix == (
        "arn:${data.aws_partition.current.partition}:sms-voice:${data.aws_region.current.name}:"
        "${data.aws_caller_identity.current.account_id}"
    )
    origination = tf.local("sms_origination_arn")
    for form in (
        "var.sms_origination_identity == null ? null",
        'startswith(var.sms_origination_identity, "arn:") ? var.sms_origination_identity',
        'startswith(var.sms_origination_identity, "pool-") ? '
        '"${local.sms_arn_prefix}:pool/${var.sms_origination_identity}"',
        '"${local.sms_arn_prefix}:phone-number/${var.sms_origination_identity}"',
    ):
        assert form in origination, form
    # A clinic's own number is E.164, not its id: any phone number of the account and region.
    assert '"${local.sms_arn_prefix}:phone-number/*"' in tf.text(tf.local("sms_origination_arns"))
    whatsapp = tf.text(tf.local("whatsapp_phone_number_arns"))
    assert ":social-messaging:" in whatsapp
    assert 'phone-number-id/${trimprefix(id, "phone-number-id-")}' in whatsapp


@pytest.mark.parametrize(
    ("identity", "accepted"),
    [
        ("phone-0123456789abcdef0123456789abcdef", True),
        ("pool-0123456789abcdef0123456789abcdef", True),
        ("arn:aws:sms-voice:us-east-1:123456789012:phone-number/phone-0123abcd", True),
        ("arn:aws:sms-voice:us-east-1:123456789012:pool/pool-0123abcd", True),
        ("arn:aws:sms-voice:us-east-1:123456789012:sender-id/CLINICA/PE", True),
        ("+51987654321", False),  # E.164 names no ARN
        ("CLINICA", False),  # a bare sender id names no country
        ("arn:aws:sms-voice:us-east-1:123456789012:configuration-set/x", False),
        ("arn:aws:sns:us-east-1:123456789012:phone-number/x", False),
        ("phone-", False),
        ("phone-0123\n", False),
    ],
)
def test_the_sms_origination_identity_is_one_iam_can_name(identity: str, accepted: bool) -> None:
    (condition,) = [
        v["condition"]
        for v in tf.blocks(tf.tree()["variable"]["sms_origination_identity"], "validation")
    ]
    pattern = terraform_regex(condition, "var.sms_origination_identity")
    assert (pattern.search(identity) is not None) == accepted
    # SendTextMessage's own constraint on OriginationIdentity (botocore's model).
    if accepted:
        assert re.fullmatch(r"[A-Za-z0-9_:/\+-]+", identity) and len(identity) <= 256


def test_each_inbound_topic_is_standard_encrypted_and_triggers_its_function() -> None:
    topics = tf.resources("aws_sns_topic")
    expected = {"inbound_sms": "sms-voice", "inbound_whatsapp": "social-messaging"}
    assert tf.local("inbound_publishers") == expected
    assert tf.local("inbound_topics") == {key: f"${{aws_sns_topic.{key}}}" for key in expected}
    for key in expected:
        topic = topics[key]
        # Neither service publishes to FIFO topics.
        assert "fifo_topic" not in topic
        assert topic["kms_master_key_id"] == "${local.data_key_arn}"
        assert topic["name"] == f'${{local.inbound_topic_names["{key}"]}}'
        assert not tf.render(tf.local("inbound_topic_names")[key]).endswith(".fifo")
    # The inbound functions are invoked by SNS (asynchronously): Lambda needs nothing on the
    # role for that, the function's resource policy allows that topic alone.
    subscription = tf.resources("aws_sns_topic_subscription")["inbound"]
    assert subscription["for_each"] == "${local.inbound_topics}"
    assert subscription["protocol"] == "lambda"
    assert subscription["topic_arn"] == "${each.value.arn}"
    assert subscription["endpoint"] == "${aws_lambda_function.this[each.key].arn}"
    permission = tf.resources("aws_lambda_permission")["inbound"]
    assert permission["for_each"] == "${local.inbound_topics}"
    assert permission["principal"] == "sns.amazonaws.com"
    assert permission["source_arn"] == "${each.value.arn}"
    assert permission["function_name"] == "${aws_lambda_function.this[each.key].function_name}"
    for key in expected:
        assert key in HANDLERS and function_entry(key)["queue"] is None
        # Failed asynchronous invocations go to the function's own dead-letter queue.
        assert failure_destinations(key) == {f"{key}_dlq"}


def test_only_each_channels_service_may_publish_to_its_topic() -> None:
    policy_resource = tf.resources("aws_sns_topic_policy")["inbound"]
    assert policy_resource["for_each"] == "${local.inbound_topics}"
    assert policy_resource["arn"] == "${each.value.arn}"
    assert policy_resource["policy"] == (
        "${data.aws_iam_policy_document.inbound_topic[each.key].json}"
    )
    document = tf.data_sources("aws_iam_policy_document")["inbound_topic"]
    assert document["for_each"] == "${local.inbound_topic_arns}"
    (statement,) = tf.blocks(document, "statement")
    assert statement["actions"] == ["sns:Publish"]
    assert statement["resources"] == ["${each.value}"]
    assert tf.block(statement, "principals") == {
        "type": "Service",
        "identifiers": ["${local.inbound_publishers[each.key]}.amazonaws.com"],
    }
    conditions = {
        (c["test"], c["variable"]): c["values"] for c in tf.blocks(statement, "condition")
    }
    assert conditions == {
        ("StringEquals", "aws:SourceAccount"): ["${data.aws_caller_identity.current.account_id}"],
        ("ArnLike", "aws:SourceArn"): [
            "arn:${data.aws_partition.current.partition}:${local.inbound_publishers[each.key]}:"
            "${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:*"
        ],
    }
    # The ARNs the policies and the key name are the topics' own.
    arns = tf.local("inbound_topic_arns")
    assert arns == (
        "${{for key, name in local.inbound_topic_names : key => "
        '"arn:${data.aws_partition.current.partition}:sns:${data.aws_region.current.name}:'
        '${data.aws_caller_identity.current.account_id}:${name}"}}'
    )


def test_the_data_key_lets_each_publisher_encrypt_for_its_own_topic_only() -> None:
    key = tf.resources("aws_kms_key")["citas"]
    policy_text = tf.text(key["policy"])
    for needle in (
        "local.kms_iam_delegation_statement",
        "for key, publisher in local.inbound_publishers",
        'Service = "${publisher}.amazonaws.com"',
        '"kms:GenerateDataKey*", "kms:Decrypt"',
        '"aws:SourceAccount" = data.aws_caller_identity.current.account_id',
        '"kms:EncryptionContext:aws:sns:topicArn" = local.inbound_topic_arns[key]',
        '"aws:SourceArn" = "arn:${data.aws_partition.current.partition}:${publisher}:',
    ):
        assert needle in policy_text, needle
    # The key names the topics by the ARNs their names give, so it does not depend on them.
    assert not tf.references(key, "aws_sns_topic")


def test_the_data_key_is_the_stacks_own_when_it_has_keys_else_none() -> None:
    """`local.data_key_arn`, which the table, queues, parameters and topics name, is the key."""
    assert tf.local("data_key_arn") == "${one(aws_kms_key.citas[*].arn)}"
    assert tf.local("observability_key_arn") == "${one(aws_kms_key.observability[*].arn)}"
    for name in ("citas", "observability"):
        key = tf.resources("aws_kms_key")[name]
        assert key["count"] == "${local.customer_managed_keys ? 1 : 0}"
