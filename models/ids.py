"""Identifiers clients may send: short, printable, safe in URLs and Kafka keys."""

from typing import Annotated

from pydantic import StringConstraints

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"

MAX_VERSION = 999_999_999_999
"""The largest aggregate version a client may name: far beyond any real one, and well
inside the 64-bit integers JSON encoders and Kafka tools take."""

AggregateId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
"""1-64 characters: letters, digits, '.', '_', ':', '-'; starts with a letter or digit."""

IdempotencyKey = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,128}$")]
"""1-128 printable ASCII characters, no spaces."""
