"""The SSM clinic directory on moto: parameters as Terraform writes them, read back by clinic."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber
from moto import mock_aws

from adapters.aws.clinics import SSMClinicDirectory
from domain.clinics import ClinicProfile
from domain.errors import TemporarilyUnavailable
from ports.clinics import ClinicDirectory
from tests.integration.aws_world import REGION

if TYPE_CHECKING:
    from mypy_boto3_ssm.client import SSMClient

PATH = "/citas-dev/clinics"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ssm(monkeypatch: pytest.MonkeyPatch) -> Iterator[SSMClient]:
    """moto's Parameter Store, in process."""
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SSM"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield boto3.client("ssm", region_name=REGION)


def terraform_value(
    clinic_id: str, name: str, api_key_id: str, public_base_url: str | None = None
) -> str:
    """The value infra/terraform writes: `jsonencode` of the object (sorted keys, no spaces)."""
    value = {
        "clinic_id": clinic_id,
        "name": name,
        "api_key_id": api_key_id,
        "public_base_url": public_base_url,
    }
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def put_clinic(
    ssm: SSMClient,
    clinic_id: str,
    name: str,
    api_key_id: str,
    public_base_url: str | None = None,
) -> None:
    ssm.put_parameter(
        Name=f"{PATH}/{clinic_id}",
        Type="String",
        Value=terraform_value(clinic_id, name, api_key_id, public_base_url),
    )


def count_reads(ssm: SSMClient) -> list[int]:
    """A list that grows by one for every GetParametersByPath call (each page is one)."""
    calls: list[int] = []

    def record(**_: Any) -> None:
        calls.append(1)

    ssm.meta.events.register("before-call.ssm.GetParametersByPath", record)
    return calls


def test_it_is_a_clinic_directory(ssm: SSMClient) -> None:
    directory: ClinicDirectory = SSMClinicDirectory(PATH, ssm)
    assert directory.all() == ()


def test_clinics_are_found_by_id_and_by_api_key_id(ssm: SSMClient) -> None:
    put_clinic(ssm, "demo", "Clínica Demo", "kqmbxvqkme")
    put_clinic(ssm, "clinica-sol", "Clínica Sol", "a1b2c3d4e5", "https://sol.example/citas")
    directory = SSMClinicDirectory(PATH, ssm)
    sol = ClinicProfile("clinica-sol", "Clínica Sol", "https://sol.example/citas")
    demo = ClinicProfile("demo", "Clínica Demo")
    assert directory.get("clinica-sol") == sol
    assert directory.by_api_key_id("a1b2c3d4e5") == sol
    assert directory.by_api_key_id("kqmbxvqkme") == demo
    assert directory.get("demo") == demo
    assert directory.all() == (sol, demo)
    # A key id is never taken for a clinic id, nor the other way round.
    assert directory.get("kqmbxvqkme") is None
    assert directory.by_api_key_id("demo") is None


def test_it_reads_only_the_parameters_right_under_its_path(ssm: SSMClient) -> None:
    put_clinic(ssm, "demo", "Clínica Demo", "kqmbxvqkme")
    # A sibling (the page-token key's kind of parameter) and a deeper level are not clinics.
    ssm.put_parameter(Name="/citas-dev/page-token-key", Type="String", Value="not a clinic")
    ssm.put_parameter(Name=f"{PATH}/demo/extra", Type="String", Value="not a clinic")
    ssm.put_parameter(Name="/citas-prod/clinics/other", Type="String", Value="not ours")
    directory = SSMClinicDirectory(PATH + "/", ssm)
    assert directory.path == PATH
    assert [c.clinic_id for c in directory.all()] == ["demo"]


def test_it_reads_once_and_answers_hits_from_memory(ssm: SSMClient) -> None:
    put_clinic(ssm, "demo", "Clínica Demo", "kqmbxvqkme")
    reads = count_reads(ssm)
    directory = SSMClinicDirectory(PATH, ssm, clock=Clock())
    assert reads == []  # nothing is read before the first lookup
    for _ in range(5):
        assert directory.by_api_key_id("kqmbxvqkme") is not None
        assert directory.get("demo") is not None
    directory.all()
    assert len(reads) == 1


def test_a_clinic_added_later_is_found_once_the_interval_has_passed(ssm: SSMClient) -> None:
    put_clinic(ssm, "demo", "Clínica Demo", "kqmbxvqkme")
    clock = Clock()
    directory = SSMClinicDirectory(PATH, ssm, clock=clock, refresh_seconds=60)
    assert directory.get("demo") is not None
    # `terraform apply` adds a clinic while the container is warm.
    put_clinic(ssm, "clinica-sol", "Clínica Sol", "a1b2c3d4e5")
    clock.now += 59.9
    assert directory.by_api_key_id("a1b2c3d4e5") is None
    clock.now += 0.1
    found = directory.by_api_key_id("a1b2c3d4e5")
    assert found is not None and found.clinic_id == "clinica-sol"
    assert [c.clinic_id for c in directory.all()] == ["clinica-sol", "demo"]


def test_a_miss_by_id_also_reads_again_when_due(ssm: SSMClient) -> None:
    clock = Clock()
    directory = SSMClinicDirectory(PATH, ssm, clock=clock, refresh_seconds=60)
    assert directory.get("clinica-sol") is None
    put_clinic(ssm, "clinica-sol", "Clínica Sol", "a1b2c3d4e5")
    clock.now += 60
    assert directory.get("clinica-sol") is not None


def test_misses_read_again_at_most_once_per_interval(ssm: SSMClient) -> None:
    put_clinic(ssm, "demo", "Clínica Demo", "kqmbxvqkme")
    reads = count_reads(ssm)
    clock = Clock()
    directory = SSMClinicDirectory(PATH, ssm, clock=clock, refresh_seconds=60)
    assert directory.get("demo") is not None
    assert len(reads) == 1
    # A stream of unknown keys: no read within the interval of the first one ...
    for step in range(100):
        clock.now += 0.5
        assert directory.by_api_key_id(f"unknown-{step}") is None
        assert directory.get(f"nobody-{step}") is None
    assert len(reads) == 1
    # ... then one read for the first miss after it, and none for the misses that follow.
    clock.now += 10
    for step in range(100):
        assert directory.by_api_key_id(f"again-{step}") is None
    assert len(reads) == 2
    clock.now += 60
    assert directory.get("still-nobody") is None
    assert len(reads) == 3
    # Hits never read.
    clock.now += 600
    assert directory.get("demo") is not None
    assert len(reads) == 3


def test_more_clinics_than_one_page_are_all_read(ssm: SSMClient) -> None:
    # GetParametersByPath answers at most 10 parameters a page.
    ids = [f"clinic-{n:02d}" for n in range(23)]
    for n, clinic_id in enumerate(ids):
        put_clinic(ssm, clinic_id, f"Clínica {n}", f"key{n:07d}")
    reads = count_reads(ssm)
    directory = SSMClinicDirectory(PATH, ssm)
    assert [c.clinic_id for c in directory.all()] == ids
    assert len(reads) == 3
    for n, clinic_id in enumerate(ids):
        found = directory.by_api_key_id(f"key{n:07d}")
        assert found is not None and found.clinic_id == clinic_id
    assert len(reads) == 3


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("{not json", "is not JSON"),
        ('["demo"]', "is not a JSON object"),
        (terraform_value("other", "Clínica Demo", "kqmbxvqkme"), "clinic_id 'other'"),
        ('{"clinic_id": "demo", "name": "Clínica Demo"}', "has no api_key_id"),
        (terraform_value("demo", "Clínica Demo", ""), "has no api_key_id"),
        ('{"clinic_id": "demo", "api_key_id": "kqmbxvqkme"}', "has no name"),
        (terraform_value("demo", "   ", "kqmbxvqkme"), "name is 1-80 characters"),
        (terraform_value("demo", "x" * 81, "kqmbxvqkme"), "name is 1-80 characters"),
        (terraform_value("demo", "Clínica Demo", "k", "ftp://x"), "http(s) URL"),
        (
            '{"clinic_id":"demo","name":"D","api_key_id":"k","public_base_url":1}',
            "public_base_url that is not a string",
        ),
    ],
)
def test_a_malformed_parameter_is_left_out_and_logged_by_name(
    ssm: SSMClient, value: str, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    put_clinic(ssm, "clinica-sol", "Clínica Sol", "a1b2c3d4e5")
    ssm.put_parameter(Name=f"{PATH}/demo", Type="String", Value=value)
    directory = SSMClinicDirectory(PATH, ssm)
    with caplog.at_level(logging.ERROR, logger="adapters.aws.clinics"):
        # One bad entry does not take the deployment's other clinics down with it.
        assert directory.get("clinica-sol") == ClinicProfile("clinica-sol", "Clínica Sol")
        assert directory.get("demo") is None
    (record,) = [r for r in caplog.records if r.getMessage() == "clinic parameter left out"]
    reason = str(record.__dict__["reason"])
    assert f"{PATH}/demo" in reason and problem in reason


def test_a_bad_clinic_id_in_a_parameter_name_is_left_out(ssm: SSMClient) -> None:
    ssm.put_parameter(
        Name=f"{PATH}/Clinica_Sol",
        Type="String",
        Value=terraform_value("Clinica_Sol", "Clínica Sol", "a1b2c3d4e5"),
    )
    put_clinic(ssm, "demo", "Clínica Demo", "kqmbxvqkme")
    assert [c.clinic_id for c in SSMClinicDirectory(PATH, ssm).all()] == ["demo"]


def test_unknown_keys_of_a_newer_terraform_are_ignored(ssm: SSMClient) -> None:
    value = json.loads(terraform_value("demo", "Clínica Demo", "kqmbxvqkme"))
    ssm.put_parameter(
        Name=f"{PATH}/demo", Type="String", Value=json.dumps({**value, "locale": "es-PE"})
    )
    assert SSMClinicDirectory(PATH, ssm).get("demo") == ClinicProfile("demo", "Clínica Demo")


def test_a_key_that_two_clinics_name_chooses_neither(
    ssm: SSMClient, caplog: pytest.LogCaptureFixture
) -> None:
    put_clinic(ssm, "clinica-luna", "Clínica Luna", "samekey123")
    put_clinic(ssm, "clinica-sol", "Clínica Sol", "samekey123")
    put_clinic(ssm, "demo", "Clínica Demo", "kqmbxvqkme")
    directory = SSMClinicDirectory(PATH, ssm)
    with caplog.at_level(logging.ERROR, logger="adapters.aws.clinics"):
        assert directory.by_api_key_id("samekey123") is None
    assert directory.by_api_key_id("kqmbxvqkme") == ClinicProfile("demo", "Clínica Demo")
    (record,) = [r for r in caplog.records if "share one API key id" in r.getMessage()]
    assert record.__dict__["parameters"] == [f"{PATH}/clinica-luna", f"{PATH}/clinica-sol"]


def test_a_malformed_parameter_added_later_leaves_the_others_served(ssm: SSMClient) -> None:
    put_clinic(ssm, "demo", "Clínica Demo", "kqmbxvqkme")
    clock = Clock()
    directory = SSMClinicDirectory(PATH, ssm, clock=clock)
    assert directory.get("demo") is not None
    ssm.put_parameter(Name=f"{PATH}/broken", Type="String", Value="{")
    put_clinic(ssm, "sol", "Clínica Sol", "a1b2c3d4e5")
    clock.now += 60
    assert directory.by_api_key_id("a1b2c3d4e5") == ClinicProfile("sol", "Clínica Sol")
    assert directory.get("demo") is not None


def test_every_clinic_is_read_again_once_the_last_read_is_an_interval_old(
    ssm: SSMClient,
) -> None:
    put_clinic(ssm, "demo", "Clínica Demo", "kqmbxvqkme")
    clock = Clock()
    directory = SSMClinicDirectory(PATH, ssm, clock=clock)
    assert [c.clinic_id for c in directory.all()] == ["demo"]
    put_clinic(ssm, "sol", "Clínica Sol", "a1b2c3d4e5")
    clock.now += 59
    assert [c.clinic_id for c in directory.all()] == ["demo"]  # within the interval
    clock.now += 1
    # The reminder sweep sees a clinic added by `terraform apply` without any miss.
    assert [c.clinic_id for c in directory.all()] == ["demo", "sol"]


@pytest.mark.parametrize("path", ["citas-dev/clinics", "", "/"])
def test_a_path_that_is_not_absolute_is_refused(path: str) -> None:
    with pytest.raises(ValueError, match="must start with '/'"):
        SSMClinicDirectory(path, client=None)


# --- SSM unavailable -------------------------------------------------------------------------


def _stubbed() -> tuple[SSMClient, Stubber]:
    client = boto3.client(
        "ssm",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return client, Stubber(client)


def _page(*parameters: tuple[str, str]) -> dict[str, Any]:
    return {"Parameters": [{"Name": name, "Type": "String", "Value": v} for name, v in parameters]}


def test_throttling_becomes_temporarily_unavailable() -> None:
    client, stubber = _stubbed()
    stubber.add_client_error(
        "get_parameters_by_path",
        service_error_code="ThrottlingException",
        service_message="Rate exceeded",
        http_status_code=400,
        expected_params={"Path": PATH, "Recursive": False},
    )
    with stubber, pytest.raises(TemporarilyUnavailable) as raised:
        SSMClinicDirectory(PATH, client).by_api_key_id("kqmbxvqkme")
    assert raised.value.details == {"service": "ssm"}
    stubber.assert_no_pending_responses()


def test_a_throttled_first_read_is_tried_again_by_the_next_lookup() -> None:
    client, stubber = _stubbed()
    stubber.add_client_error("get_parameters_by_path", "ThrottlingException", http_status_code=400)
    stubber.add_response(
        "get_parameters_by_path",
        _page((f"{PATH}/demo", terraform_value("demo", "Clínica Demo", "kqmbxvqkme"))),
    )
    directory = SSMClinicDirectory(PATH, client, clock=Clock())
    with stubber:
        with pytest.raises(TemporarilyUnavailable):
            directory.get("demo")
        # Nothing to answer from yet, so no interval applies: the next lookup reads.
        assert directory.get("demo") == ClinicProfile("demo", "Clínica Demo")
        stubber.assert_no_pending_responses()


def test_a_throttled_re_read_is_not_retried_by_every_following_miss() -> None:
    client, stubber = _stubbed()
    demo = (f"{PATH}/demo", terraform_value("demo", "Clínica Demo", "kqmbxvqkme"))
    stubber.add_response("get_parameters_by_path", _page(demo))
    stubber.add_client_error("get_parameters_by_path", "ThrottlingException", http_status_code=400)
    clock = Clock()
    directory = SSMClinicDirectory(PATH, client, clock=clock, refresh_seconds=60)
    with stubber:
        assert directory.get("demo") is not None
        clock.now += 60
        with pytest.raises(TemporarilyUnavailable):
            directory.by_api_key_id("new-key")
        # No response is left on the stubber: a further read would fail the test.
        clock.now += 30
        assert directory.by_api_key_id("new-key") is None
        assert directory.get("demo") is not None
        stubber.assert_no_pending_responses()


def test_an_unreachable_endpoint_becomes_temporarily_unavailable() -> None:
    client = boto3.client(
        "ssm",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        # Port 9 (discard) refuses at once; one attempt keeps the test quick.
        endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=1),
    )
    with pytest.raises(TemporarilyUnavailable):
        SSMClinicDirectory(PATH, client).all()
