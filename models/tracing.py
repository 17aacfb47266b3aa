"""The trace context every record carries: a W3C `traceparent`, in the record's headers.

A client's request brings one (`traceparent: 00-<trace id>-<parent id>-<flags>`) or
the worker starts a trace; from there every command, event and answer of that
request, and of every saga step it leads to, carries it in a record header of
this name, so one trace id follows an order through every topic. In memory it
travels as the header's bytes, untouched (no parse, no copy): with OpenTelemetry
off (app/tracing.py) a step passes on the traceparent it was given; with it on,
each span passes on its own (same trace id, the span as parent).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable

TRACEPARENT = "traceparent"
"""The record header (and HTTP header) that carries the trace context."""

Trace = bytes | None
"""A traceparent header's value, or None where a record carries none (older records,
other producers)."""

_FORM = re.compile(rb"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE = b"0" * 32
_ZERO_SPAN = b"0" * 16


def parse_traceparent(value: str | None) -> Trace:
    """An incoming traceparent, checked as W3C Trace Context says; None when absent or
    invalid (then a new trace is started, as the standard asks, rather than the request
    refused). A future version's longer form is read by its version 00 fields."""
    if not value:
        return None
    raw = value.strip().lower().encode("ascii", "replace")
    match = _FORM.match(raw)
    if match is None:
        return None
    version, trace_id, span_id, flags = match.groups()
    if version == b"ff" or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    if version == b"00" and len(raw) != 55:
        return None
    if version != b"00" and len(raw) > 55 and raw[55:56] != b"-":
        return None
    return b"00-" + trace_id + b"-" + span_id + b"-" + flags


def new_traceparent() -> bytes:
    """A new trace's context, marked sampled (a worker with spans on records it).
    `random` as OpenTelemetry's own id generator uses it: ids, not secrets."""
    return format_traceparent(random.getrandbits(128) or 1, random.getrandbits(64) or 1, 1)


def format_traceparent(trace_id: int, span_id: int, flags: int) -> bytes:
    return f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}".encode()


def trace_id_of(trace: Trace) -> str | None:
    """The 32 hex digits of the trace id."""
    return None if trace is None else trace[3:35].decode()


def trace_of(headers: Iterable[tuple[str, bytes]] | None) -> Trace:
    """The traceparent among a record's headers (a handful: a loop beats a dict)."""
    if headers:
        for name, value in headers:
            if name == TRACEPARENT:
                return value
    return None


def trace_headers(trace: Trace) -> list[tuple[str, bytes]] | None:
    """The headers of a record sent in this trace."""
    return None if trace is None else [(TRACEPARENT, trace)]
