"""API shapes for rules."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator

from kinline.bounds import REASON_CHARS, TIME_CHARS
from kinline.people.schemas import Reason, plain_text


class RuleOut(BaseModel):
    id: str
    authority: str
    kind: str
    channel: str
    person: str = Field(description="A person id, or `all`")
    contacts: Any = Field(description="The selector, as in the scenario format")
    text: str = Field(description="Its text: the English one, else the first in code order")
    texts: dict[str, str] = Field(
        description='Its text per language (`{"en": ..., "es": ...}`) when written per language; '
        "empty when it has one text"
    )
    starts_at: str | None = Field(
        description="Local wall time it took effect, if not from the start"
    )
    ends_at: str | None = Field(description="Local wall time it ends (its `until` or lifting)")
    definition: dict[str, Any] = Field(description="The whole rule, as in the scenario format")


class ImposeIn(BaseModel):
    rule: dict[str, Any] = Field(
        description="A rule as in the scenario format (SPEC section 3). Its `text` is a string, "
        'or the text per language: `{"en": "Calls suspended.", "es": "Llamadas suspendidas."}`; '
        "each person reads it in their language"
    )
    reason: Reason = Field(
        min_length=1,
        max_length=REASON_CHARS,
        description="Why; the people concerned read it in their notice",
    )
    authority_cited: str | None = Field(
        default=None,
        max_length=500,
        description="The authority relied on (e.g. 28 CFR 540.100(a)); required when the "
        "rule overrides a recorded court order's grant, whose court and counsel are emailed",
    )
    at: str | None = Field(
        default=None, max_length=TIME_CHARS, description="Local wall time; default now"
    )

    @field_validator("rule")
    @classmethod
    def _no_nul_characters(cls, rule: dict[str, Any]) -> dict[str, Any]:
        _check_text(rule, "rule")
        return rule


def _check_text(value: object, where: str) -> None:
    if isinstance(value, str):
        try:
            plain_text(value)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, where)
            _check_text(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_text(item, f"{where}[{index}]")


class LiftIn(BaseModel):
    reason: Reason = Field(
        min_length=1,
        max_length=REASON_CHARS,
        description="Why; the people concerned read it in their notice",
    )
    at: str | None = Field(
        default=None, max_length=TIME_CHARS, description="Local wall time; default now"
    )
