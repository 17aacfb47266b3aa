"""JSON log lines: one object a line, naming the batch or record it is about; the log
settings refuse what they cannot do, by name."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from app import logs
from app.settings import Settings, settings


def record(message: str, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("agents.engine", logging.WARNING, __file__, 1, message, (), None)
    made.__dict__.update(extra)
    return made


def test_a_line_names_its_batch_and_what_the_call_adds() -> None:
    token = logs.LOG_CONTEXT.set({"reader": "saga", "topic": "t", "partition": 3, "offset": 7})
    try:
        line = logs.JsonFormatter().format(record("stalled\n", offset=9, correlation_id="o1"))
    finally:
        logs.LOG_CONTEXT.reset(token)
    parsed = json.loads(line)
    assert "\n" not in line
    assert parsed["level"] == "warning" and parsed["logger"] == "agents.engine"
    assert parsed["message"] == "stalled" and parsed["time"].endswith("Z")
    assert parsed["reader"] == "saga" and parsed["partition"] == 3
    assert parsed["offset"] == 9  # the record the line is about, within its batch
    assert parsed["correlation_id"] == "o1"


def test_a_traceback_stays_on_its_line() -> None:
    try:
        raise ValueError("bad\nrecord")
    except ValueError:
        made = record("failed")
        made.exc_info = sys.exc_info()
    line = logs.JsonFormatter().format(made)
    assert len(line.splitlines()) == 1
    assert "ValueError: bad\nrecord" in json.loads(line)["exception"]


def test_json_is_mode_s_handler_with_a_json_formatter_and_text_is_fausts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(logs, "settings", settings.model_copy(update={"log_format": "text"}))
    assert logs.logging_config() is None
    monkeypatch.setattr(logs, "settings", settings.model_copy(update={"log_format": "json"}))
    config = logs.logging_config()
    assert config is not None and config["merge"] is True
    assert config["formatters"]["default"] == {"()": "app.logs.JsonFormatter"}


@pytest.mark.parametrize(("variable", "value"), [("LOG_FORMAT", "yaml"), ("LOG_LEVEL", "loud")])
def test_a_log_setting_out_of_its_choices_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit, match=f"setting {variable} must be one of"):
        Settings()


def test_the_log_settings_default_to_text_at_info_and_read_any_case(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    assert (Settings().log_format, Settings().log_level) == ("text", "info")
    monkeypatch.setenv("LOG_FORMAT", "JSON")
    monkeypatch.setenv("LOG_LEVEL", "Debug")
    assert (Settings().log_format, Settings().log_level) == ("json", "debug")


def test_spans_are_off_unless_an_exporter_or_an_endpoint_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert Settings().traces_exporter == "none"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert Settings().traces_exporter == "otlp"
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert Settings().traces_exporter == "none"
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with pytest.raises(SystemExit, match="OTEL_TRACES_EXPORTER must be one of"):
        Settings()
