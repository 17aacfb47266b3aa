"""Settings from the environment (app/settings.py): typed, bounded, each with one line of
help; a bad value stops the process with one line naming the variable and the reason."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic.fields import FieldInfo

from app import settings as settings_module
from app.configuration_doc import settings_fields
from app.env_settings import EnvSettings, bounds, choices, extra
from app.settings import (
    DECLARED,
    GROUPS,
    CommandLineSettings,
    FaustSettings,
    Settings,
)

PROJECT = Path(__file__).resolve().parents[2]


def test_exactly_once_is_refused_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCESSING_GUARANTEE", "exactly_once")
    with pytest.raises(SystemExit, match="was removed: every effect already happens once"):
        Settings()


def test_at_least_once_is_the_only_guarantee_and_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PROCESSING_GUARANTEE", raising=False)
    Settings()
    monkeypatch.setenv("PROCESSING_GUARANTEE", "at_least_once")
    Settings()


@pytest.mark.parametrize(
    ("variable", "raw", "refusal"),
    [
        # an integer
        ("SHOP_PARTITIONS", "eight", "an integer of at least 1"),
        ("COMMAND_MAX_BATCH", "1.5", "an integer of at least 1"),
        # a bounded integer, out of its bounds
        ("SERVICE_FETCH_WAIT_MS", "1001", "an integer between 0 and 1000"),
        ("WEB_PORT", "0", "an integer between 1 and 65535"),
        # a number
        ("COMMAND_TIMEOUT", "soon", "a number greater than 0"),
        ("COMMAND_TIMEOUT", "0", "a number greater than 0"),
        # a flag
        ("SAGA_LOCAL_DISPATCH", "maybe", "on or off (1/0, true/false, yes/no, on/off)"),
        # a choice
        ("LOG_FORMAT", "xml", "one of text, json"),
        ("LOG_LEVEL", "verbose", "one of debug, info, warning, error, critical"),
        ("KAFKA_SECURITY_PROTOCOL", "TLS", "one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
    ],
)
def test_a_bad_value_stops_with_the_variable_named_and_the_reason(
    monkeypatch: pytest.MonkeyPatch, variable: str, raw: str, refusal: str
) -> None:
    monkeypatch.setenv(variable, raw)
    with pytest.raises(SystemExit) as stop:
        Settings()
    assert stop.value.code == f"setting {variable} must be {refusal}, got {raw!r}"


def test_every_bad_value_is_named_in_the_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_LINGER_MS", "-1")
    monkeypatch.setenv("LOG_LEVEL", "loud")
    monkeypatch.setenv("SHOP_REPLICATION_FACTOR", "three")  # its min ISR default is skipped
    with pytest.raises(SystemExit) as stop:
        Settings()
    assert stop.value.code == (
        "setting SHOP_REPLICATION_FACTOR must be an integer of at least 1, got 'three'; "
        "setting KAFKA_LINGER_MS must be an integer between 0 and 1000, got '-1'; "
        "setting LOG_LEVEL must be one of debug, info, warning, error, critical, got 'loud'"
    )


def test_a_worker_with_a_bad_value_prints_one_line_not_a_traceback() -> None:
    run = subprocess.run(
        [sys.executable, "-c", "import app.settings"],
        cwd=PROJECT,
        env={**os.environ, "FOLD_MAX_BATCH": "lots"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1
    assert run.stderr == "setting FOLD_MAX_BATCH must be an integer of at least 1, got 'lots'\n"


def test_an_empty_variable_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMAND_MAX_BATCH", "")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "")
    read = Settings()
    assert (read.command_max_batch, read.kafka_security_protocol) == (500, "PLAINTEXT")


def test_the_logging_settings_default_to_text_and_info(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    assert (Settings().log_format, Settings().log_level) == ("text", "info")


def test_a_choice_is_taken_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "JSON")
    monkeypatch.setenv("LOG_LEVEL", "Warning")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "ssl")
    read = Settings()
    assert (read.log_format, read.log_level, read.kafka_security_protocol) == (
        "json",
        "warning",
        "SSL",
    )


def test_the_tls_files_are_settings_and_no_secret_is_shown(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca, certificate = tmp_path / "ca.pem", tmp_path / "client.pem"
    ca.write_text("a CA")
    certificate.write_text("a certificate and its key")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SSL_CAFILE", str(ca))
    monkeypatch.setenv("KAFKA_SSL_CERTFILE", str(certificate))
    monkeypatch.setenv("KAFKA_SSL_KEY_PASSWORD", "sentinel-key-secret")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "shop")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "sentinel-sasl-secret")
    monkeypatch.setenv("API_TOKEN", "sentinel-api-token")
    read = Settings()
    assert read.kafka_ssl_cafile == str(ca)
    assert (read.kafka_ssl_certfile, read.kafka_ssl_keyfile) == (str(certificate), "")
    assert read.kafka_ssl_key_password == "sentinel-key-secret"
    shown = repr(read) + repr(CommandLineSettings())
    assert "sentinel" not in shown


def test_the_command_line_and_faust_read_theirs_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOP_URL", "http://10.0.0.7:6070")
    monkeypatch.setenv("API_TOKEN", "t0ken")
    monkeypatch.setenv("F_DATADIR", "/var/lib/shop/worker-1")
    assert (CommandLineSettings().shop_url, CommandLineSettings().api_token) == (
        "http://10.0.0.7:6070",
        "t0ken",
    )
    assert FaustSettings().datadir == "/var/lib/shop/worker-1"


def every_field() -> list[tuple[str, FieldInfo]]:
    return list(settings_fields().items())


@pytest.mark.parametrize(("variable", "field"), every_field(), ids=[v for v, _ in every_field()])
def test_every_setting_is_declared_whole(variable: str, field: FieldInfo) -> None:
    assert re.fullmatch(r"[A-Z][A-Z0-9_]*", variable)
    assert field.description and "\n" not in field.description, "one line of help"
    assert extra(field)["group"] in GROUPS
    if field.annotation in (int, float):
        least, _, above = bounds(field)
        assert least is not None or above is not None, "a number has a lower bound"
    assert field.annotation in (int, float, bool, str) or choices(field)


def test_every_class_of_settings_is_on_the_page() -> None:
    classes = {
        value
        for value in vars(settings_module).values()
        if isinstance(value, type) and issubclass(value, EnvSettings) and value is not EnvSettings
    }
    assert classes == set(DECLARED)
