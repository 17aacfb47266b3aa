"""Named fault points and the stalled-agent registry behind `/ops/health`."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaConnectionError

from app import faults
from app.stalls import Stalls


def test_a_fault_spec_names_point_action_seconds_and_first_hit() -> None:
    parsed = faults.parse("append:fail:30@25, dispatch:kill, reply:stall:1.5")
    assert (parsed["append"].action, parsed["append"].seconds, parsed["append"].from_hit) == (
        "fail",
        30.0,
        25,
    )
    assert (parsed["dispatch"].action, parsed["dispatch"].from_hit) == ("kill", 1)
    assert parsed["reply"].seconds == 1.5
    assert faults.parse("") == {}


@pytest.mark.parametrize("spec", ["append", "append:explode", ":kill", "append:fail:x", "a:kill@z"])
def test_a_bad_fault_spec_is_refused_with_its_text(spec: str) -> None:
    with pytest.raises(ValueError, match="SHOP_FAULT"):
        faults.parse(spec)


def test_a_fail_fault_raises_a_system_error_from_its_hit_on_for_its_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(faults, "FAULTS", faults.parse("append:fail:0.2@2"))

    async def run() -> list[bool]:
        raised = []
        for pause in (0, 0, 0, 0.25):
            await asyncio.sleep(pause)
            try:
                await faults.reached("append")
                raised.append(False)
            except KafkaConnectionError:
                raised.append(True)
        return raised

    assert asyncio.run(run()) == [False, True, True, False]


def test_an_agent_is_stalled_from_its_first_system_error_until_it_succeeds() -> None:
    registry = Stalls()
    registry.failed("payments-service", KafkaConnectionError("broker down"))
    registry.failed("payments-service", KafkaConnectionError("broker down"))
    [stall] = registry.current()
    assert stall["agent"] == "payments-service"
    assert stall["failures"] == 2
    assert "broker down" in str(stall["error"])
    registry.cleared("payments-service")
    assert registry.current() == []
    assert registry.failures("payments-service") == 0


def test_shop_fail_first_fails_that_agents_first_attempts_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert faults.parse_fail_first("stock-service:2") == ("stock-service", 2)
    assert faults.parse_fail_first("") == ("", 0)
    assert faults.parse_fail_first("stock-service") == ("stock-service", 0)
    monkeypatch.setattr(faults, "FAIL_FIRST", faults.parse_fail_first("stock-service:2"))
    for attempt in (0, 1):
        with pytest.raises(faults.InjectedFailure, match=f"injected failure {attempt + 1} of 2"):
            faults.handler_attempt("stock-service", attempt)
    faults.handler_attempt("stock-service", 2)
    faults.handler_attempt("payments-service", 0)
    assert not isinstance(faults.InjectedFailure("x"), OSError)  # the handler's, not the system's
