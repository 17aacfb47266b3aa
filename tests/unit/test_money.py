"""Money is exact: a decimal with two places, read from strings, never from floats."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError

from models.accounts import AmountRequest
from models.money import MAX_AMOUNT, MONEY_TEXT, Money, PositiveMoney, format_money, parse_money


class Price(BaseModel):
    amount: Money


class Transfer(BaseModel):
    amount: PositiveMoney


# --- what is accepted -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "amount"),
    [
        ("10", Decimal("10.00")),
        ("10.5", Decimal("10.50")),
        ("0.01", Decimal("0.01")),
        ("12.3", Decimal("12.30")),
        ("-3.10", Decimal("-3.10")),
        (7, Decimal("7.00")),
        (Decimal("2.5"), Decimal("2.50")),
        (str(MAX_AMOUNT), MAX_AMOUNT),
    ],
)
def test_money_is_read_from_decimal_strings_and_integers(given: object, amount: Decimal) -> None:
    parsed = parse_money(given)
    assert parsed == amount
    assert parsed.as_tuple().exponent == -2  # always two places, so "10.00" not "1E+1"


def test_money_is_written_back_as_a_string_with_two_places() -> None:
    assert format_money(Decimal("3")) == "3.00"
    assert Price(amount="7.5").model_dump(mode="json") == {"amount": "7.50"}
    assert Price(amount=4).model_dump_json() == '{"amount":"4.00"}'


# --- what is refused ---------------------------------------------------------------------


@pytest.mark.parametrize("value", [0.1, 10.0, 1e3])
def test_a_float_is_never_money_because_it_cannot_be_exact(value: float) -> None:
    with pytest.raises(ValueError, match="not a float"):
        parse_money(value)


def test_a_boolean_is_not_money() -> None:
    with pytest.raises(ValueError):
        parse_money(True)


@pytest.mark.parametrize("value", ["1.001", "0.005", "10.999"])
def test_money_has_at_most_two_decimal_places(value: str) -> None:
    with pytest.raises(ValueError, match="two decimal places"):
        parse_money(value)


@pytest.mark.parametrize("value", ["  12.30 ", "1.100", "1e2", "+5", "007", ".5", "5.", "12.50\n"])
def test_money_has_one_written_form_the_api_schema_states(value: str) -> None:
    """Each of these is a number, but not as the OpenAPI document says money is written;
    the server refuses what the document refuses, so the two cannot drift apart."""
    with pytest.raises(ValueError, match="written like"):
        parse_money(value)
    assert not re.fullmatch(MONEY_TEXT, value)


@pytest.mark.parametrize("value", ["NaN", "nan", "sNaN", "inf", "Infinity", "-Infinity"])
def test_money_is_a_finite_number(value: str) -> None:
    with pytest.raises(ValueError):
        parse_money(value)


@pytest.mark.parametrize("value", ["", "abc", "1,00", "10 EUR", "0x10"])
def test_money_is_a_number(value: str) -> None:
    with pytest.raises(ValueError, match="not a decimal number"):
        parse_money(value)


@pytest.mark.parametrize("value", [None, [], {}, b"10"])
def test_money_is_not_any_other_type(value: object) -> None:
    with pytest.raises(ValueError):
        parse_money(value)


@pytest.mark.parametrize(
    "value",
    [
        "1000000000.01",
        "-1000000000.01",
        "1e12",
        # far beyond the decimal context's 28 digits: must still be a ValueError
        # (a refusal), not a decimal.InvalidOperation escaping as a server error
        "1e30",
        "123456789012345678901234567890",
        "1e999999",
    ],
)
def test_money_is_limited(value: str) -> None:
    with pytest.raises(ValueError, match="limited"):
        parse_money(value)


def test_a_refusal_names_the_field_in_a_model() -> None:
    with pytest.raises(ValidationError) as error:
        Price(amount=1.5)
    assert error.value.errors()[0]["loc"] == ("amount",)
    assert "not a float" in error.value.errors()[0]["msg"]


# --- amounts moved are strictly positive -------------------------------------------------


@pytest.mark.parametrize("value", ["0", "0.00", "-0", "-1.00"])
def test_an_amount_moved_must_be_greater_than_zero(value: str) -> None:
    with pytest.raises(ValidationError) as error:
        Transfer(amount=value)
    assert error.value.errors()[0]["loc"] == ("amount",)
    assert "greater than zero" in error.value.errors()[0]["msg"]


def test_a_deposit_request_takes_money_and_nothing_else() -> None:
    assert AmountRequest.model_validate({"amount": "0.01"}).amount == Decimal("0.01")
    for bad in ({"amount": 5.0}, {"amount": "x"}, {"amount": "0"}, {}):
        with pytest.raises(ValidationError) as error:
            AmountRequest.model_validate(bad)
        assert error.value.errors()[0]["loc"] == ("amount",)
    with pytest.raises(ValidationError) as error:
        AmountRequest.model_validate({"amount": "1.00", "currency": "EUR"})
    assert error.value.errors()[0]["loc"] == ("currency",)
