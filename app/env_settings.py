"""How a setting is read from the environment: declared (variable, default, bounds, one
line of help, group), described in words, and refused by name when a value is bad.

The declarations themselves are in app/settings.py; docs/configuration.md is generated
from them (app/configuration_doc.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, get_args, get_origin

import annotated_types
from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict


def declarer(group: str) -> Callable[..., Any]:
    """A declarer of the settings of one group: `setting(VARIABLE, default, help, ...)`."""

    def setting(
        variable: str,
        default: Any,
        meaning: str,
        *,
        shown: str | None = None,
        secret: bool = False,
        **bounds: Any,
    ) -> Any:
        """`default` may be a function of the settings declared before (`shown` says how
        the page shows it); `bounds` are pydantic's ge/le/gt; a secret is never shown."""
        about: dict[str, Any] = {"group": group}
        if shown is not None:
            about["shown_default"] = shown
        given: dict[str, Any] = (
            {"default_factory": default} if callable(default) else {"default": default}
        )
        return Field(
            **given,
            validation_alias=variable,
            description=meaning,
            json_schema_extra=about,
            repr=not secret,
            **bounds,
        )

    return setting


# --- what a field is: its variable, group, bounds, choices --------------------------------


def variable(field: FieldInfo) -> str:
    """The environment variable a setting is read from."""
    assert isinstance(field.validation_alias, str), field
    return field.validation_alias


def variables(model: type[BaseSettings]) -> dict[str, FieldInfo]:
    """variable -> field, of every setting the class reads itself (not a nested class's)."""
    return {
        field.validation_alias: field
        for field in model.model_fields.values()
        if isinstance(field.validation_alias, str)
    }


def extra(field: FieldInfo) -> dict[str, Any]:
    """What `declarer` noted of the setting: its group, and how its default is shown."""
    assert isinstance(field.json_schema_extra, dict), field
    return field.json_schema_extra


def choices(field: FieldInfo) -> tuple[str, ...]:
    """The values a choice setting takes (a Literal), or () for any other setting."""
    if get_origin(field.annotation) is Literal:
        return tuple(str(choice) for choice in get_args(field.annotation))
    return ()


def bounds(field: FieldInfo) -> tuple[Any, Any, Any]:
    """The field's (ge, le, gt) bounds, each None when it has none."""
    found: dict[str, Any] = {}
    for constraint in field.metadata:
        if isinstance(constraint, annotated_types.Ge | annotated_types.Le | annotated_types.Gt):
            found[type(constraint).__name__] = getattr(
                constraint, type(constraint).__name__.lower()
            )
    return found.get("Ge"), found.get("Le"), found.get("Gt")


def expected(field: FieldInfo) -> str:
    """What a value must be, in words: the refusal says it, and the page shows it."""
    if field.annotation is bool:
        return "on or off (1/0, true/false, yes/no, on/off)"
    if options := choices(field):
        return "one of " + ", ".join(options)
    if field.annotation is int:
        noun = "an integer"
    elif field.annotation is float:
        noun = "a number"
    else:
        return "any text"
    least, most, above = bounds(field)
    if least is not None and most is not None:
        return f"{noun} between {least} and {most}"
    if least is not None:
        return f"{noun} of at least {least}"
    if above is not None:
        return f"{noun} greater than {above}"
    return noun


# --- reading, and refusing a bad value ------------------------------------------------


def refusal(model: type[EnvSettings], error: ValidationError) -> str:
    """One line for every bad value: the variable, what it must be, what it was. A check
    of our own (a ValueError raised by a validator) is its own whole sentence."""
    by_name = {**model.model_fields, **variables(model)}
    reasons = []
    for problem in error.errors(include_url=False):
        if problem["type"] == "default_factory_not_called":  # follows from another problem
            continue
        if problem["type"] == "value_error":
            reasons.append(str(problem["ctx"]["error"]))
            continue
        field = by_name[str(problem["loc"][0])]
        reasons.append(
            f"setting {variable(field)} must be {expected(field)}, got {problem['input']!r}"
        )
    return "; ".join(reasons)


class EnvSettings(BaseSettings):
    """Settings read from the environment when built: an empty variable is unset (the
    default), choices are matched in any case, and a bad value stops the process."""

    model_config = SettingsConfigDict(
        frozen=True,
        case_sensitive=True,
        env_ignore_empty=True,
        populate_by_name=True,  # Settings(partitions=4) in tests, besides the variables
        extra="ignore",
    )

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as error:
            raise SystemExit(refusal(type(self), error)) from None

    @field_validator("*", mode="before")
    @classmethod
    def _choice_in_any_case(cls, value: Any, info: ValidationInfo) -> Any:
        assert info.field_name is not None
        if isinstance(value, str):
            for choice in choices(cls.model_fields[info.field_name]):
                if value.strip().casefold() == choice.casefold():
                    return choice
        return value
