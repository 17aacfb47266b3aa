"""Money: Decimal with two places, written as a string in JSON, never a float."""

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("1000000000.00")


_CANONICAL = re.compile(r"-?\d{1,10}\.\d\d")
"""How money is written ("12.50"): within the limit by its length, two places exactly."""


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
    return amount.quantize(CENT)


def format_money(amount: Decimal) -> str:
    return str(amount.quantize(CENT))


Money = Annotated[
    Decimal,
    BeforeValidator(parse_money),
    PlainSerializer(format_money, return_type=str, when_used="always"),
]
"""A monetary amount: validated from strings, serialized back to "12.50"."""


def _positive(amount: Decimal) -> Decimal:
    if amount <= 0:
        raise ValueError("must be greater than zero")
    return amount


PositiveMoney = Annotated[Money, AfterValidator(_positive)]
"""A Money that is strictly greater than zero (amounts moved, prices)."""
