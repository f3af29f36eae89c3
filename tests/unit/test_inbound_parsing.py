"""Inbound SMS and WhatsApp events as AWS documents them, parsed strictly.

The fixtures under tests/fixtures/inbound follow the documentation their `_source` names; the
tests strip that key and hand the rest over exactly as AWS delivers it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.aws.inbound import MalformedInbound, parse_sms, parse_whatsapp, sns_messages
from domain.replies import MAX_INBOUND_TEXT, MAX_MESSAGE_ID, DeliveryFailure, InboundMessage

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inbound"
AWS_PHONE_ID = "phone-number-id-976c72a700aac43eaf573ae050example"
META_PHONE_ID = "106540352242922"
PATIENT = "+16505551234"
WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMx"


@functools.cache
def _fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def fixture(name: str) -> dict[str, Any]:
    """A fresh copy of the fixture `name`, without its `_source`."""
    data = json.loads(_fixture_text(name))
    data.pop("_source")
    assert isinstance(data, dict)
    return data


def message_of(name: str) -> str:
    return json.dumps(fixture(name), ensure_ascii=False)


def whatsapp(*, messages: Any = None, statuses: Any = None, context: Any = None) -> str:
    """A WhatsApp event shaped like the fixtures, with the given value lists."""
    event = fixture("whatsapp_text.json")
    entry = json.loads(event["whatsAppWebhookEntry"])
    value = entry["changes"][0]["value"]
    value.pop("messages")
    if messages is not None:
        value["messages"] = messages
    if statuses is not None:
        value["statuses"] = statuses
    event["whatsAppWebhookEntry"] = json.dumps(entry)
    if context is not None:
        event["context"] = context
    return json.dumps(event)


def text_message(**changes: Any) -> dict[str, Any]:
    return {
        "from": PATIENT[1:],
        "id": WAMID,
        "timestamp": "1739321024",
        "type": "text",
        "text": {"body": "SI"},
        **changes,
    }


def sms(**changes: Any) -> str:
    payload = {**fixture("sms_two_way.json"), **changes}
    return json.dumps({k: v for k, v in payload.items() if v is not None})


# The fixtures.


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda p: p.name)
def test_every_fixture_names_the_documentation_it_follows(path: Path) -> None:
    sources = json.loads(path.read_text(encoding="utf-8"))["_source"]
    assert sources
    assert all(
        s.startswith(("https://docs.aws.amazon.com/", "https://developers.facebook.com/"))
        for s in sources
    )


def test_the_two_way_sms_payload_of_the_aws_guide() -> None:
    parsed = parse_sms(message_of("sms_two_way.json"))
    assert parsed.channel == "sms"
    assert parsed.message_id == "cae173d2-66b9-564c-8309-21f858e9fb84"
    assert parsed.sender == "+14255550182"
    assert parsed.recipient == "+12125550101"
    assert parsed.text == "EXAMPLE"
    assert parsed.button is None


def test_the_lambda_sns_event_gives_its_notification() -> None:
    [(message_id, topic, message)] = sns_messages(fixture("lambda_sns_sms.json"))
    assert message_id == "95df01b4-ee98-5cb9-9903-4c221d41eb5e"
    assert topic == "arn:aws:sns:us-east-1:123456789012:citas-inbound-sms"
    parsed = parse_sms(message)
    assert parsed.channel == "sms"
    assert parsed.message_id == "2f1d8c55-1b52-4c8e-9a8f-7d0c3e7b9a10"
    assert parsed.sender == "+51987654321"
    assert parsed.recipient == "+51912345678"
    assert parsed.text == "Sí"
    assert parsed.button is None


def test_a_whatsapp_event_through_its_lambda_sns_event() -> None:
    [(message_id, topic, message)] = sns_messages(fixture("lambda_sns_whatsapp.json"))
    assert message_id == "d8a7f0c3-6a5e-5b1c-9f0e-2c4b6a8d0e11"
    assert topic == "arn:aws:sns:us-east-1:123456789012:citas-inbound-whatsapp"
    assert parse_whatsapp(message) == parse_whatsapp(message_of("whatsapp_text.json"))


def test_a_whatsapp_text_message() -> None:
    [parsed] = parse_whatsapp(message_of("whatsapp_text.json"))
    assert isinstance(parsed, InboundMessage)
    assert parsed.channel == "whatsapp"
    assert parsed.message_id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA="
    assert parsed.sender == PATIENT
    assert parsed.recipient == AWS_PHONE_ID
    assert parsed.text == "Sí, confirmo"
    assert parsed.button is None


def test_a_whatsapp_quick_reply_button_gives_its_payload() -> None:
    [parsed] = parse_whatsapp(message_of("whatsapp_button.json"))
    assert isinstance(parsed, InboundMessage)
    assert parsed.channel == "whatsapp"
    assert parsed.message_id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMQA="
    assert parsed.sender == PATIENT
    assert parsed.recipient == AWS_PHONE_ID
    assert parsed.text is None
    assert parsed.button == "confirmar:k7Qx2mPz"


def test_a_whatsapp_interactive_reply_button_gives_its_id() -> None:
    [parsed] = parse_whatsapp(message_of("whatsapp_interactive.json"))
    assert isinstance(parsed, InboundMessage)
    assert parsed.message_id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMgA="
    assert parsed.sender == PATIENT
    assert parsed.recipient == AWS_PHONE_ID
    assert parsed.text is None
    assert parsed.button == "cancelar:k7Qx2mPz"


def test_a_whatsapp_image_is_a_message_with_neither_text_nor_button() -> None:
    [parsed] = parse_whatsapp(message_of("whatsapp_image.json"))
    assert isinstance(parsed, InboundMessage)
    assert parsed.message_id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMwA="
    assert parsed.sender == PATIENT
    assert parsed.recipient == AWS_PHONE_ID
    assert (parsed.text, parsed.button) == (None, None)


def test_only_the_failed_whatsapp_status_is_reported() -> None:
    assert parse_whatsapp(message_of("whatsapp_statuses.json")) == [
        DeliveryFailure(
            channel="whatsapp",
            message_id="wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI1NUFCQjYxNzZEN0I3QzA0MkIA",
            # The phone it was for: where the SMS fallback goes.
            recipient="+16505551234",
            error_code="131047",
        )
    ]


@pytest.mark.parametrize(
    "interactive",
    [
        {"type": "list_reply", "list_reply": {"id": "row-1", "title": "Mañana"}},
        {"type": "nfm_reply", "nfm_reply": {"response_json": "{}"}},
    ],
)
def test_other_interactive_replies_carry_neither_text_nor_button(
    interactive: dict[str, Any],
) -> None:
    message = text_message(type="interactive", interactive=interactive)
    [parsed] = parse_whatsapp(whatsapp(messages=[message]))
    assert isinstance(parsed, InboundMessage)
    assert (parsed.text, parsed.button) == (None, None)


def test_several_messages_and_statuses_come_out_in_order() -> None:
    second = text_message(id=WAMID + "2", text={"body": "NO"})
    failed = {"id": WAMID + "3", "status": "failed", "recipient_id": PATIENT[1:]}
    parsed = parse_whatsapp(whatsapp(messages=[text_message(), second], statuses=[failed]))
    assert [type(p).__name__ for p in parsed] == [
        "InboundMessage",
        "InboundMessage",
        "DeliveryFailure",
    ]
    assert [p.message_id for p in parsed] == [WAMID, WAMID + "2", WAMID + "3"]


def test_a_change_that_is_not_about_messages_is_skipped() -> None:
    entry = {
        "id": "102290129340398",
        "changes": [{"field": "message_template_status_update", "value": {"event": "APPROVED"}}],
    }
    event = {**fixture("whatsapp_text.json"), "whatsAppWebhookEntry": json.dumps(entry)}
    assert parse_whatsapp(json.dumps(event)) == []


# The recipient: AWS's phone number id when the header gives it, Meta's otherwise.


@pytest.mark.parametrize(
    "context",
    [
        {},
        {"MetaPhoneNumberIds": []},
        # Another number of the same WABA.
        {
            "MetaPhoneNumberIds": [
                {
                    "metaPhoneNumberId": "999999999999999",
                    "arn": "arn:aws:social-messaging:us-east-1:123456789012:phone-number-id/abc",
                }
            ]
        },
        # An ARN of something else.
        {
            "MetaPhoneNumberIds": [
                {
                    "metaPhoneNumberId": META_PHONE_ID,
                    "arn": "arn:aws:social-messaging:us-east-1:123456789012:waba/abc",
                }
            ]
        },
    ],
)
def test_without_a_matching_aws_phone_number_the_recipient_is_metas_id(
    context: dict[str, Any],
) -> None:
    [parsed] = parse_whatsapp(whatsapp(messages=[text_message()], context=context))
    assert isinstance(parsed, InboundMessage)
    assert parsed.recipient == META_PHONE_ID


def test_without_a_context_the_recipient_is_metas_id() -> None:
    event = fixture("whatsapp_text.json")
    del event["context"]
    [parsed] = parse_whatsapp(json.dumps(event))
    assert isinstance(parsed, InboundMessage)
    assert parsed.recipient == META_PHONE_ID


# Texts: cut, empty, unencodable.


def test_a_huge_sms_is_cut() -> None:
    parsed = parse_sms(sms(messageBody="SI" + "x" * 100_000))
    assert parsed.text is not None
    assert len(parsed.text) == MAX_INBOUND_TEXT
    assert parsed.text.startswith("SIxx")


def test_a_huge_whatsapp_text_is_cut() -> None:
    message = text_message(text={"body": "y" * (MAX_INBOUND_TEXT * 3)})
    [parsed] = parse_whatsapp(whatsapp(messages=[message]))
    assert isinstance(parsed, InboundMessage)
    assert parsed.text == "y" * MAX_INBOUND_TEXT


def test_an_empty_sms_is_an_empty_text() -> None:
    assert parse_sms(sms(messageBody="")).text == ""


def test_a_lone_surrogate_in_a_text_is_replaced() -> None:
    parsed = parse_sms(
        '{"inboundMessageId": "a", "originationNumber": "+51987654321", '
        '"destinationNumber": "+51912345678", "messageBody": "S\\ud800I"}'
    )
    assert parsed.text == "S\ufffdI"
    assert parsed.text.encode("utf-8") == "S\ufffdI".encode()


# What is refused.


@pytest.mark.parametrize(
    "message",
    [
        "",
        "{",
        "not json",
        "[]",
        "null",
        '"a string"',
        "[" * 100_000,
        sms(inboundMessageId=None),
        sms(inboundMessageId=""),
        sms(inboundMessageId=7),
        sms(inboundMessageId="x" * (MAX_MESSAGE_ID + 1)),
        sms(inboundMessageId="two words"),
        sms(originationNumber=None),
        sms(originationNumber="51987654321"),
        sms(originationNumber="+0987654321"),
        sms(originationNumber="+5198"),
        sms(originationNumber="+5198765432112345"),
        sms(originationNumber="+51 987 654 321"),
        # Fullwidth digits, which `\d` would take.
        sms(originationNumber="+\uff15\uff11987654321"),
        sms(originationNumber="+51987654321\n"),
        sms(destinationNumber=None),
        sms(destinationNumber="clinic"),
        sms(messageBody=None),
        sms(messageBody=["SI"]),
    ],
)
def test_a_malformed_sms_is_refused(message: str) -> None:
    with pytest.raises(MalformedInbound):
        parse_sms(message)


def test_the_longest_id_is_accepted() -> None:
    assert parse_sms(sms(inboundMessageId="x" * MAX_MESSAGE_ID)).message_id == "x" * MAX_MESSAGE_ID


def _envelope(**changes: Any) -> str:
    return json.dumps({**fixture("whatsapp_text.json"), **changes})


def _entry(entry: Any) -> str:
    return _envelope(whatsAppWebhookEntry=json.dumps(entry))


def _one(**changes: Any) -> str:
    message = {k: v for k, v in text_message(**changes).items() if v is not None}
    return whatsapp(messages=[message])


@pytest.mark.parametrize(
    "message",
    [
        "{",
        "[]",
        _envelope(whatsAppWebhookEntry=None),
        _envelope(
            whatsAppWebhookEntry=json.loads(fixture("whatsapp_text.json")["whatsAppWebhookEntry"])
        ),
        _envelope(whatsAppWebhookEntry="{not json"),
        _envelope(whatsAppWebhookEntry="[]"),
        _envelope(context="x"),
        _envelope(context={"MetaPhoneNumberIds": "x"}),
        _envelope(context={"MetaPhoneNumberIds": ["x"]}),
        _envelope(context={"MetaPhoneNumberIds": [{"metaPhoneNumberId": 1, "arn": "a"}]}),
        _entry({"id": "1"}),
        _entry({"id": "1", "changes": {}}),
        _entry({"id": "1", "changes": ["x"]}),
        _entry({"id": "1", "changes": [{"value": {}}]}),
        _entry({"id": "1", "changes": [{"field": "messages"}]}),
        _entry({"id": "1", "changes": [{"field": "messages", "value": {"messages": []}}]}),
        _entry(
            {"changes": [{"field": "messages", "value": {"metadata": {"phone_number_id": "1 2"}}}]}
        ),
        whatsapp(messages="x"),
        whatsapp(messages=["x"]),
        whatsapp(statuses="x"),
        whatsapp(statuses=["x"]),
        _one(id=None),
        _one(id=""),
        _one(id="wamid." + "A" * MAX_MESSAGE_ID),
        _one(**{"from": None}),
        _one(**{"from": "+16505551234"}),
        _one(**{"from": "1650"}),
        _one(**{"from": 16505551234}),
        _one(type=None),
        _one(text=None),
        _one(text={"body": 1}),
        _one(type="button", button={"text": "Confirmar"}),
        _one(type="button", button="confirmar:k7Qx2mPz"),
        _one(type="interactive", interactive={"type": "button_reply"}),
        _one(type="interactive", interactive={"type": "button_reply", "button_reply": {}}),
        _one(type="interactive", interactive={"button_reply": {"id": "confirmar:x"}}),
        whatsapp(statuses=[{"id": WAMID}]),
        whatsapp(statuses=[{"status": "failed"}]),
        whatsapp(statuses=[{"id": "x" * (MAX_MESSAGE_ID + 1), "status": "failed"}]),
        whatsapp(statuses=[{"id": WAMID, "status": "failed", "errors": "x"}]),
        whatsapp(statuses=[{"id": WAMID, "status": "failed", "errors": ["x"]}]),
        whatsapp(statuses=[{"id": WAMID, "status": "failed", "errors": [{"code": True}]}]),
        whatsapp(statuses=[{"id": WAMID, "status": "failed", "errors": [{"code": "13 1"}]}]),
        whatsapp(statuses=[{"id": WAMID, "status": "failed", "errors": [{"code": -1}]}]),
    ],
)
def test_a_malformed_whatsapp_event_is_refused(message: str) -> None:
    with pytest.raises(MalformedInbound):
        parse_whatsapp(message)


@pytest.mark.parametrize(
    ("errors", "code"),
    [
        (None, None),
        ([], None),
        ([{"title": "Rate limit hit"}], None),
        ([{"code": 130429, "title": "Rate limit hit"}, {"code": 131000}], "130429"),
        ([{"code": "131026"}], "131026"),
    ],
)
def test_a_failed_status_with_or_without_errors(errors: Any, code: str | None) -> None:
    status = {"id": WAMID, "status": "failed", "timestamp": "1739321024"}
    if errors is not None:
        status["errors"] = errors
    assert parse_whatsapp(whatsapp(statuses=[status])) == [
        DeliveryFailure(channel="whatsapp", message_id=WAMID, error_code=code)
    ]


def test_a_failed_status_names_its_recipient_only_when_it_is_a_phone() -> None:
    status = {"id": WAMID, "status": "failed", "recipient_id": "51987654321"}
    [failure] = parse_whatsapp(whatsapp(statuses=[status]))
    assert isinstance(failure, DeliveryFailure)
    assert failure.recipient == "+51987654321"
    status["recipient_id"] = "not-a-phone"
    [failure] = parse_whatsapp(whatsapp(statuses=[status]))
    assert isinstance(failure, DeliveryFailure)
    assert failure.recipient is None


def test_statuses_other_than_failed_are_ignored_whatever_their_id() -> None:
    statuses = [{"id": 1, "status": s} for s in ("sent", "delivered", "read", "deleted")]
    assert parse_whatsapp(whatsapp(statuses=statuses)) == []


def test_the_errors_quote_neither_the_phone_nor_the_text() -> None:
    secret = "+51987654321 mi diagnóstico"
    for parse, message in [
        (parse_sms, sms(originationNumber=secret)),
        (parse_sms, "{" + secret),
        (parse_whatsapp, _one(**{"from": secret})),
        (parse_whatsapp, _envelope(whatsAppWebhookEntry="{" + secret)),
    ]:
        with pytest.raises(MalformedInbound) as caught:
            parse(message)
        assert "51987654321" not in str(caught.value)
        assert caught.value.__cause__ is None
        assert caught.value.__context__ is None


# The SNS envelope.


def _record(**changes: Any) -> dict[str, Any]:
    record = fixture("lambda_sns_sms.json")["Records"][0]
    sns = {**record["Sns"], **changes}
    return {**record, "Sns": {k: v for k, v in sns.items() if v is not None}}


def test_an_event_without_records_gives_nothing() -> None:
    assert sns_messages({"Records": []}) == []


def test_every_record_is_given_in_order() -> None:
    event = {"Records": [_record(MessageId="one"), _record(MessageId="two", Message="{}")]}
    assert [m[0] for m in sns_messages(event)] == ["one", "two"]
    assert sns_messages(event)[1][2] == "{}"


@pytest.mark.parametrize(
    "event",
    [
        [],
        "x",
        {},
        {"Records": None},
        {"Records": {}},
        {"Records": ["x"]},
        {"Records": [{**_record(), "EventSource": "aws:sqs"}]},
        {"Records": [{**_record(), "Sns": None}]},
        {"Records": [{**_record(), "Sns": "x"}]},
        {"Records": [_record(Type="SubscriptionConfirmation")]},
        {"Records": [_record(Type=None)]},
        {"Records": [_record(MessageId=None)]},
        {"Records": [_record(MessageId="x" * (MAX_MESSAGE_ID + 1))]},
        {"Records": [_record(TopicArn=None)]},
        {"Records": [_record(TopicArn="arn:aws:sqs:us-east-1:123456789012:queue")]},
        {"Records": [_record(TopicArn="arn:aws:sns:us-east-1:123:topic")]},
        {"Records": [_record(Message=None)]},
        {"Records": [_record(Message={"messageBody": "SI"})]},
        {"Records": [_record(), {**_record(), "EventSource": "aws:s3"}]},
    ],
)
def test_a_record_that_is_not_an_sns_notification_is_refused(event: Any) -> None:
    with pytest.raises(MalformedInbound):
        sns_messages(event)


def test_a_gov_cloud_topic_is_an_sns_topic() -> None:
    arn = "arn:aws-us-gov:sns:us-gov-west-1:123456789012:citas_inbound"
    [(_, topic, _)] = sns_messages({"Records": [_record(TopicArn=arn)]})
    assert topic == arn


# Whatever comes in, MalformedInbound is the only exception.

KEYS = st.sampled_from(
    [
        "Records",
        "EventSource",
        "Sns",
        "Type",
        "MessageId",
        "TopicArn",
        "Message",
        "originationNumber",
        "destinationNumber",
        "messageBody",
        "inboundMessageId",
        "context",
        "MetaPhoneNumberIds",
        "metaPhoneNumberId",
        "arn",
        "whatsAppWebhookEntry",
        "changes",
        "field",
        "value",
        "metadata",
        "phone_number_id",
        "messages",
        "statuses",
        "id",
        "from",
        "type",
        "text",
        "body",
        "button",
        "payload",
        "interactive",
        "button_reply",
        "status",
        "errors",
        "code",
    ]
) | st.text(max_size=6)
INTERESTING = st.sampled_from(
    [
        "aws:sns",
        "Notification",
        "messages",
        "text",
        "button",
        "interactive",
        "button_reply",
        "failed",
        "+51987654321",
        "51987654321",
        "\ud800",
        "x" * (MAX_MESSAGE_ID + 1),
        "arn:aws:sns:us-east-1:123456789012:t",
        10**30,
        -1,
        True,
        1e308,
        float("inf"),
    ]
)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
JSON = st.recursive(
    SCALARS | INTERESTING,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=8,
)
# 200 examples a fuzz, 100 for the two that draw the most: under three seconds together.
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ_LIGHT = settings(FUZZ, max_examples=100)
DELETE = object()
MUTATION = JSON | st.just(DELETE)


def _only_malformed(parse: Callable[[str], Any], message: str) -> None:
    try:
        result = parse(message)
    except MalformedInbound:
        return
    for item in result if isinstance(result, list) else [result]:
        assert isinstance(item, InboundMessage | DeliveryFailure)
        assert 0 < len(item.message_id) <= MAX_MESSAGE_ID
        if isinstance(item, InboundMessage):
            assert item.sender.startswith("+")
            assert item.text is None or len(item.text) <= MAX_INBOUND_TEXT


def _sns_only_malformed(event: Any) -> None:
    try:
        result = sns_messages(event)
    except MalformedInbound:
        return
    for message_id, topic, message in result:
        assert 0 < len(message_id) <= MAX_MESSAGE_ID
        assert topic.startswith("arn:aws")
        assert isinstance(message, str)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


def _replace(value: Any, path: Sequence[Any], new: Any) -> Any:
    """`value` with what `path` leads to replaced by `new` (or removed, for DELETE)."""
    if not path:
        return None if new is DELETE else new
    head, rest = path[0], path[1:]
    copy = dict(value) if isinstance(value, dict) else list(value)
    if new is DELETE and not rest:
        del copy[head]
    else:
        copy[head] = _replace(value[head], rest, new)
    return copy


def _mutated(data: st.DataObject, value: Any) -> Any:
    paths = list(_paths(value))
    path = paths[data.draw(st.integers(0, len(paths) - 1))]
    return _replace(value, path, data.draw(MUTATION))


@FUZZ
@given(st.text(st.characters(exclude_categories=()), max_size=60))
def test_any_text_raises_nothing_but_malformed(text: str) -> None:
    _only_malformed(parse_sms, text)
    _only_malformed(parse_whatsapp, text)


@FUZZ_LIGHT
@given(JSON)
def test_any_json_raises_nothing_but_malformed(value: Any) -> None:
    message = json.dumps(value)
    _only_malformed(parse_sms, message)
    _only_malformed(parse_whatsapp, message)
    _sns_only_malformed(value)
    _sns_only_malformed({"Records": [value]})


NAMES = sorted(p.name for p in FIXTURES.glob("whatsapp_*.json"))


@FUZZ
@given(st.data(), st.sampled_from(NAMES), st.booleans())
def test_a_mutated_whatsapp_event_raises_nothing_but_malformed(
    data: st.DataObject, name: str, in_entry: bool
) -> None:
    event = fixture(name)
    if in_entry:
        entry = _mutated(data, json.loads(event["whatsAppWebhookEntry"]))
        event["whatsAppWebhookEntry"] = json.dumps(entry)
    else:
        event = _mutated(data, event)
    _only_malformed(parse_whatsapp, json.dumps(event))


@FUZZ_LIGHT
@given(st.data(), st.sampled_from(["lambda_sns_sms.json", "lambda_sns_whatsapp.json"]))
def test_a_mutated_sms_or_sns_event_raises_nothing_but_malformed(
    data: st.DataObject, name: str
) -> None:
    event = _mutated(data, fixture(name))
    _sns_only_malformed(event)
    _only_malformed(parse_sms, json.dumps(_mutated(data, fixture("sms_two_way.json"))))
