"""The `citas` command on an install that lacks what a command needs."""

from __future__ import annotations

import pytest

from entrypoints.local import cli


def _missing(name: str) -> None:
    raise ModuleNotFoundError(f"No module named {name!r}", name=name)


@pytest.mark.parametrize("module", ["punq", "aws_lambda_powertools.event_handler", "hcl2"])
def test_a_core_install_is_told_to_install_the_cli_extra(
    module: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "serve", lambda *a, **k: _missing(module))
    assert cli.main(["serve"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "pip install 'citas[cli]'" in err
    assert module in err
    assert "Traceback" not in err


def test_a_missing_module_of_citas_itself_is_a_bug_and_is_not_hidden(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cli, "serve", lambda *a, **k: _missing("entrypoints.nowhere"))
    with pytest.raises(ModuleNotFoundError):
        cli.main(["serve"])


def test_the_local_clinics_write_on_citas_channels_given_by_env_or_option(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from entrypoints.local import cli

    monkeypatch.setenv("CITAS_CHANNELS", "whatsapp,sms")
    for options in (None, ["sol:sol-key-1:Clínica Sol"]):
        app, _ = cli._app("memory", options)
        assert {c.channels for c in app.clinics.all()} == {("whatsapp", "sms")}
    monkeypatch.setenv("CITAS_CHANNELS", "fax")
    with pytest.raises(ValueError, match="CITAS_CHANNELS"):
        cli._app("memory", None)
