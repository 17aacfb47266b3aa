"""Money: Decimal with two places, written as a string in JSON, never a float."""

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("1000000000.00")


_CANONICAL = re.compile(r"-?\d{1,10}\.\d\d")
"""How money is written ("12.50"): within the limit by its length, two places exactly."""

MONEY_TEXT = r"^-?(?:(?:0|[1-9]\d{0,8})(?:\.\d{1,2})?|1000000000(?:\.00?)?)$"
"""What a client may write: "12", "12.5", "-3.05"; no exponent, spaces or leading zeros,
at most two places, within MAX_AMOUNT. The OpenAPI document states this same pattern."""
POSITIVE_MONEY_TEXT = (
    r"^(?:[1-9]\d{0,8}(?:\.\d{1,2})?|1000000000(?:\.00?)?|0\.(?:0[1-9]|[1-9]\d?))$"
)
NON_NEGATIVE_MONEY_TEXT = MONEY_TEXT.replace("^-?", "^", 1)
_TEXT = re.compile(MONEY_TEXT)


def parse_money(value: Any) -> Decimal:
    """Accept a decimal string (or int); refuse floats so no rounding sneaks in."""
    if type(value) is str and _CANONICAL.fullmatch(value):
        # what every event and state carries: the checks below cannot fail (fast path)
        amount = Decimal(value)
        if abs(amount) <= MAX_AMOUNT:
            return amount
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, (bool, float)):
        raise ValueError('money must be a decimal string such as "10.00", not a float')
    elif isinstance(value, (int, str)):
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"not a decimal number: {value!r}") from None
    else:
        raise ValueError('money must be a decimal string such as "10.00"')
    if not amount.is_finite():
        raise ValueError("money must be a finite number")
    # the limit first: quantizing a huge number overflows the decimal context
    # (decimal.InvalidOperation, which pydantic would not turn into a refusal)
    if abs(amount) > MAX_AMOUNT:
        raise ValueError(f"money is limited to {MAX_AMOUNT}")
    if amount != amount.quantize(CENT):
        raise ValueError("money has at most two decimal places")
    # one written form, so the API's schema can say exactly what is accepted
    if isinstance(value, str) and not _TEXT.fullmatch(value):  # `$` passes a final "\n"
        raise ValueError('money is written like "12.50": no exponent, spaces or leading zeros')
    return amount.quantize(CENT)


def format_money(amount: Decimal) -> str:
    return str(amount.quantize(CENT))


def _schema(pattern: str, low: int) -> dict[str, Any]:
    """What a request may send: the string form, or a whole number (never a float)."""
    return {
        "anyOf": [
            {"type": "string", "pattern": pattern, "examples": ["12.50"]},
            {"type": "integer", "minimum": low, "maximum": int(MAX_AMOUNT)},
        ]
    }


Money = Annotated[
    Decimal,
    BeforeValidator(parse_money),
    PlainSerializer(format_money, return_type=str, when_used="always"),
    WithJsonSchema(_schema(MONEY_TEXT, -int(MAX_AMOUNT)), mode="validation"),
]
"""A monetary amount: validated from strings, serialized back to "12.50"."""


def _positive(amount: Decimal) -> Decimal:
    if amount <= 0:
        raise ValueError("must be greater than zero")
    return amount


NON_NEGATIVE_INPUT = WithJsonSchema(_schema(NON_NEGATIVE_MONEY_TEXT, 0), mode="validation")
"""What a request may send where zero is allowed and a negative amount is not (a
discount): for a field that checks the sign itself, with its own message."""

PositiveMoney = Annotated[
    Money,
    AfterValidator(_positive),
    WithJsonSchema(_schema(POSITIVE_MONEY_TEXT, 1), mode="validation"),
]
"""A Money that is strictly greater than zero (amounts moved, prices)."""
