"""The command side's memory, folded from its own event log: state, and answered commands.

A command's only write is its events. Each event record carries, in its
headers, the id of the command that decided it and that request's
fingerprint; folding the event topic (tables/state_fold.py with `commands`)
keeps each aggregate's state (`s/<id>`) and each accepted command's events
(`c/<id>/<command id>`). So a redelivered command, on any worker after any
crash, finds its events in the log's fold and gets the same answer, appending
nothing. A rejection writes nothing: the writer remembers recent ones in
memory, so a retry gets the same answer, but after a crash or a move it is
decided again.

`decide_batch` is the whole decision of a batch, pure: in arrival order,
against the stored state and the batch's own effects.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from pydantic import BaseModel

from domain.decider import Decider
from models.envelope import CommandEnvelope, CommandResult, EventEnvelope, Rejection
from models.tracing import TRACEPARENT, Trace
from tables.read_models import Folded, LogRecord, Stored
from tables.state_fold import StateFold, state_key

COMMAND_HEADER = "command"
"""Header of an event record: the id of the command that decided it."""
FINGERPRINT_HEADER = "fingerprint"
"""Header of an event record: the fingerprint of that command's request."""

COMMANDS = b"c/"


def command_key(aggregate_id: str, command_id: str) -> bytes:
    return COMMANDS + f"{aggregate_id}/{command_id}".encode()


def fingerprint(command: CommandEnvelope) -> str:
    """What makes two commands with one idempotency key the same request."""
    request = {
        "type": command.command_type,
        "aggregate_id": command.aggregate_id,
        "expected_version": command.expected_version,
        "payload": command.payload,
    }
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def headers_for(
    command: CommandEnvelope, request_print: str, trace: Trace = None
) -> list[tuple[str, bytes]]:
    """An event record's headers: its command, that request's fingerprint, and the trace
    context it was decided in (models/tracing.py), if any."""
    headers = [
        (COMMAND_HEADER, command.command_id.encode()),
        (FINGERPRINT_HEADER, request_print.encode()),
    ]
    if trace is not None:
        headers.append((TRACEPARENT, trace))
    return headers


def command_of(headers: Iterable[tuple[str, bytes]]) -> tuple[str, str] | None:
    """(command id, fingerprint) from an event record's headers; None for events that
    carry none (appended by other producers, or before commands were indexed)."""
    found = dict(headers)
    command_id, request_print = found.get(COMMAND_HEADER), found.get(FINGERPRINT_HEADER)
    if command_id is None or request_print is None:
        return None
    return command_id.decode(), request_print.decode()


def record_event(entry: bytes | None, request_print: str, raw: bytes) -> bytes:
    """A command's row with one more of its events: the fingerprint, then each event on a
    line of its own (JSON as serialized holds no raw newline)."""
    return (entry or request_print.encode()) + b"\n" + raw


class CommandLogFold(StateFold[Any]):
    """The command side's fold of its event topic: each aggregate's state, and each
    accepted command's events by the command id in their headers."""

    def folded_event(self, record: LogRecord, key: str, folded: Folded, stored: Stored) -> None:
        command = command_of(getattr(record, "headers", None) or ())
        if command is None or record.value is None:
            return
        row = command_key(key, command[0])
        folded.rows[row] = record_event(folded.current(row, stored), command[1], record.value)


class Recorded(NamedTuple):
    fingerprint: str
    events: list[bytes]


def recorded(stored: Stored, aggregate_id: str, command_id: str) -> Recorded | None:
    """The events an accepted command appended, as the log holds them; None if none."""
    entry = stored.get(command_key(aggregate_id, command_id))
    if entry is None:
        return None
    head, *events = entry.split(b"\n")
    return Recorded(head.decode(), events)


def key_reused(command: CommandEnvelope, version: int) -> CommandResult:
    return CommandResult.answering(
        command,
        outcome="rejected",
        version=version,
        rejection=Rejection(
            code="idempotency_key_reused",
            reason="this Idempotency-Key was already used for a different request",
        ),
    )


def answer_from_log(
    decider: Decider[Any, Any, Any], command: CommandEnvelope, events: Sequence[bytes]
) -> CommandResult:
    """The answer to a command whose events are in the log: what it was told the first time."""
    envelopes = [EventEnvelope.model_validate_json(raw) for raw in events]
    return CommandResult.answering(
        command,
        outcome="accepted",
        version=envelopes[-1].aggregate_version,
        events=envelopes,
    )


def load_state(decider: Decider[Any, Any, Any], stored: Stored, aggregate_id: str) -> BaseModel:
    raw = stored.get(state_key(aggregate_id))
    if raw is None:
        return decider.initial_state(aggregate_id)
    return decider.state_type.model_validate_json(raw)


@dataclass(frozen=True)
class Append:
    """An accepted command's events, to be appended with its headers."""

    command: CommandEnvelope
    fingerprint: str
    result: CommandResult


CommandKey = tuple[str, str]
"""(aggregate id, command id)."""
Answered = tuple[str, CommandResult]
"""(the request's fingerprint, its answer)."""


@dataclass
class Decided:
    """A batch's decision: each command's answer (by position), what to append, and the
    rejections it made (the log keeps no rejection: the caller may remember them)."""

    answers: list[CommandResult] = field(default_factory=list)
    appends: list[Append] = field(default_factory=list)
    rejections: dict[CommandKey, Answered] = field(default_factory=dict)
    states: dict[str, BaseModel] = field(default_factory=dict)
    """Each aggregate the appends change, in the state they leave it."""


def appended_rows(decided: Decided, values: Sequence[Sequence[bytes]]) -> dict[bytes, bytes]:
    """The rows CommandLogFold writes when it folds the batch's appends (`values`: each
    append's events as appended), taken from the decision itself: folding them again
    would decode each event and each state the decision has just made. Only for appends
    that landed right after the stored offset (nothing else between)."""
    rows = {
        state_key(key): state.model_dump_json().encode() for key, state in decided.states.items()
    }
    for append, raws in zip(decided.appends, values, strict=True):
        entry = None
        for raw in raws:
            entry = record_event(entry, append.fingerprint, raw)
        if entry is not None:
            rows[command_key(append.command.aggregate_id, append.command.command_id)] = entry
    return rows


def decide_batch(
    decider: Decider[Any, Any, Any],
    commands: Sequence[CommandEnvelope],
    stored: Stored,
    now: datetime,
    rejected: Mapping[CommandKey, Answered] | None = None,
) -> Decided:
    """Decide commands in arrival order: a command the log already holds is answered from
    it, one `rejected` remembers gets that rejection again, a repeat within the batch gets
    its first answer, any other is decided against the state the stored rows and the
    batch's earlier commands leave."""
    decided = Decided()
    states = decided.states  # each aggregate as the batch's earlier commands left it
    first: dict[CommandKey, Answered] = {}
    for command in commands:
        request_print = fingerprint(command)
        key = (command.aggregate_id, command.command_id)
        if key not in first and rejected is not None and key in rejected:
            first[key] = rejected[key]
        if key not in first:
            known = recorded(stored, *key)
            if known is not None:
                first[key] = (known.fingerprint, answer_from_log(decider, command, known.events))
            else:
                state = states.get(command.aggregate_id)
                if state is None:
                    state = load_state(decider, stored, command.aggregate_id)
                result, after = decider.execute(command, state, now)
                first[key] = (request_print, result)
                if result.events:
                    states[command.aggregate_id] = after
                    decided.appends.append(Append(command, request_print, result))
                else:
                    decided.rejections[key] = first[key]
        print_then, answer = first[key]
        if print_then != request_print:
            answer = key_reused(command, answer.version)
        decided.answers.append(answer)
    return decided
