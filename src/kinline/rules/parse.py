"""Rules from plain data (a scenario file, an API body, a stored definition).

Every error names the field that is wrong, as a dotted path, so a file can
point at its line and the API at its field. Numbers and times are bounded
(``kinline.bounds``) where the engine's date arithmetic or a database column
would overflow, so a rule accepted is a rule every later decision can use.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from kinline.bounds import (
    CASE_NUMBER_CHARS,
    CODE_CHARS,
    COUNT_MAX,
    MINUTES_MAX,
    ROLLING_DAYS_MAX,
    RULE_TEXT_CHARS,
    YEAR_MAX,
    YEAR_MIN,
)
from kinline.rules.model import (
    RELATIONSHIPS,
    Authority,
    Channel,
    Kind,
    Monitoring,
    Period,
    Quota,
    Rule,
    Selector,
    Setting,
    Window,
)
from kinline.rules.periods import wall_to_instant

E = TypeVar("E", Authority, Kind, Channel, Monitoring, Setting)


class RuleError(ValueError):
    """Bad rule data; ``field`` is the dotted path of the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


COMMON_FIELDS = frozenset(
    {"id", "authority", "kind", "channel", "person", "contacts", "from", "until", "overrides"}
    | {"text", "case_number"}
)
KIND_FIELDS: Mapping[Kind, frozenset[str]] = {
    Kind.GRANT: frozenset({"quota", "max_minutes"}),
    Kind.LIMIT: frozenset({"quota", "max_minutes", "window", "min_gap_minutes"}),
    Kind.DENY: frozenset(),
    Kind.REQUIRE: frozenset({"monitoring", "interpreter", "setting"}),
}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def parse_rule(data: object, zone: ZoneInfo, order: int, field: str = "rule") -> Rule:
    """A rule as written in a scenario or sent to the API (``from``/``until`` local)."""
    mapping = expect_mapping(data, field)
    starts_at = _optional_time(mapping, "from", zone, field)
    ends_at = _optional_time(mapping, "until", zone, field)
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise RuleError(f"{field}.until", "must be later than `from`")
    return _build(mapping, starts_at, ends_at, order, field)


def rule_from_definition(
    definition: Mapping[str, Any],
    *,
    starts_at: datetime | None,
    ends_at: datetime | None,
    order: int,
) -> Rule:
    """A stored rule: its definition plus the instants it is in force."""
    return _build(definition, starts_at, ends_at, order, "rule")


def rule_definition(rule: Rule) -> dict[str, Any]:
    """The rule as plain JSON data, without its active interval (stored beside it)."""
    out: dict[str, Any] = {
        "id": rule.id,
        "authority": str(rule.authority),
        "kind": str(rule.kind),
        "channel": str(rule.channel),
        "person": rule.person if rule.person is not None else "all",
        "contacts": selector_definition(rule.contacts),
        "text": dict(rule.texts) if rule.texts else rule.text,
    }
    if rule.overrides:
        out["overrides"] = sorted(rule.overrides)
    if rule.case_number is not None:
        out["case_number"] = rule.case_number
    if rule.quota is not None:
        quota: dict[str, Any] = {"per": period_definition(rule.quota.per)}
        if rule.quota.count is not None:
            quota["count"] = rule.quota.count
        if rule.quota.minutes is not None:
            quota["minutes"] = rule.quota.minutes
        out["quota"] = quota
    if rule.max_minutes is not None:
        out["max_minutes"] = rule.max_minutes
    if rule.window is not None:
        out["window"] = {
            "from": rule.window.opens.strftime("%H:%M"),
            "to": rule.window.closes.strftime("%H:%M"),
        }
    if rule.min_gap_minutes is not None:
        out["min_gap_minutes"] = rule.min_gap_minutes
    if rule.monitoring is not None:
        out["monitoring"] = str(rule.monitoring)
    if rule.interpreter is not None:
        out["interpreter"] = rule.interpreter
    if rule.setting is not None:
        out["setting"] = str(rule.setting)
    return out


def selector_definition(selector: Selector) -> object:
    if selector == Selector():
        return "any"
    out: dict[str, Any] = {}
    if selector.ids is not None:
        out["ids"] = sorted(selector.ids)
    if selector.relationships is not None:
        out["relationships"] = sorted(selector.relationships)
    if selector.privileged:
        out["privileged"] = True
    if selector.exclude:
        out["exclude"] = sorted(selector.exclude)
    return out


def period_definition(period: Period) -> object:
    return {"rolling_days": period.days} if period.is_rolling else period.kind


def _build(
    mapping: Mapping[str, Any],
    starts_at: datetime | None,
    ends_at: datetime | None,
    order: int,
    field: str,
) -> Rule:
    rule_id = parse_id(mapping.get("id"), f"{field}.id")
    authority = parse_enum(Authority, mapping.get("authority"), f"{field}.authority")
    kind = parse_enum(Kind, mapping.get("kind"), f"{field}.kind")
    channel = parse_enum(Channel, mapping.get("channel"), f"{field}.channel")
    allowed = COMMON_FIELDS | KIND_FIELDS[kind]
    for key in mapping:
        if key not in allowed:
            raise RuleError(f"{field}.{key}", f"not a field of a {kind} rule")
    person = mapping.get("person")
    if person is None:
        raise RuleError(f"{field}.person", "is required: a person id or `all`")
    person_id = None if person == "all" else parse_id(person, f"{field}.person")
    if "contacts" not in mapping:
        raise RuleError(f"{field}.contacts", "is required: `any` or a selector")
    overrides = frozenset(
        parse_id(item, f"{field}.overrides")
        for item in expect_list(mapping.get("overrides", []), f"{field}.overrides")
    )
    text, texts = parse_text(mapping.get("text", ""), f"{field}.text")
    case_number = mapping.get("case_number")
    if case_number is not None and not isinstance(case_number, str):
        raise RuleError(f"{field}.case_number", "must be text")
    if case_number is not None:
        check_length(case_number, f"{field}.case_number", CASE_NUMBER_CHARS)
    monitoring = mapping.get("monitoring")
    interpreter = mapping.get("interpreter")
    if interpreter is not None and (
        not isinstance(interpreter, str)
        or len(interpreter) > CODE_CHARS
        or not _LANGUAGE.fullmatch(interpreter)
    ):
        raise RuleError(f"{field}.interpreter", "must be a language code such as `es`")
    setting = mapping.get("setting")
    if setting is not None and channel is not Channel.VISIT:
        raise RuleError(
            f"{field}.setting", f"only a visit rule has a setting, not a {channel} rule"
        )
    window = mapping.get("window")
    min_gap = mapping.get("min_gap_minutes")
    max_minutes = mapping.get("max_minutes")
    quota = mapping.get("quota")
    return Rule(
        id=rule_id,
        authority=authority,
        kind=kind,
        channel=channel,
        person=person_id,
        contacts=parse_selector(mapping["contacts"], f"{field}.contacts"),
        text=text,
        texts=texts,
        starts_at=starts_at,
        ends_at=ends_at,
        overrides=overrides,
        quota=None if quota is None else parse_quota(quota, f"{field}.quota"),
        max_minutes=None
        if max_minutes is None
        else parse_count(max_minutes, f"{field}.max_minutes", minimum=1, maximum=MINUTES_MAX),
        window=None if window is None else parse_window(window, f"{field}.window"),
        min_gap_minutes=None
        if min_gap is None
        else parse_count(min_gap, f"{field}.min_gap_minutes", minimum=0, maximum=MINUTES_MAX),
        monitoring=None
        if monitoring is None
        else parse_enum(Monitoring, monitoring, f"{field}.monitoring"),
        interpreter=interpreter,
        setting=None if setting is None else parse_enum(Setting, setting, f"{field}.setting"),
        order=order,
        case_number=case_number,
    )


def parse_text(data: object, field: str) -> tuple[str, dict[str, str]]:
    """A rule's text: one text, or one per language (``{en: ..., es: ...}``).

    Returns the text to show when the reader's language has none (English if
    given, else the first language in code order, so a stored rule, whose JSON
    keys are sorted, reads the same) and the texts per language (empty for one
    text)."""
    if isinstance(data, str):
        return check_length(data, field, RULE_TEXT_CHARS), {}
    if not isinstance(data, Mapping):
        raise RuleError(field, "must be text, or a mapping of language codes to texts")
    if not data:
        raise RuleError(field, "must give the text in at least one language")
    texts: dict[str, str] = {}
    for language, text in data.items():
        if (
            not isinstance(language, str)
            or len(language) > CODE_CHARS
            or not _LANGUAGE.fullmatch(language)
        ):
            raise RuleError(field, f"{language!r} is not a language code such as `es`")
        if not isinstance(text, str):
            raise RuleError(f"{field}.{language}", "must be text")
        texts[language] = check_length(text, f"{field}.{language}", RULE_TEXT_CHARS)
    return texts.get("en", texts[min(texts)]), texts


def parse_selector(data: object, field: str) -> Selector:
    if data == "any":
        return Selector()
    if not isinstance(data, Mapping):
        raise RuleError(field, "must be `any` or a mapping with ids, relationships or privileged")
    for key in data:
        if key not in {"ids", "relationships", "privileged", "exclude"}:
            raise RuleError(f"{field}.{key}", "not a selector field")
    forms = [key for key in ("ids", "relationships", "privileged") if key in data]
    if len(forms) > 1:
        raise RuleError(field, f"use one of ids, relationships or privileged, not {forms}")
    exclude = frozenset(
        parse_id(item, f"{field}.exclude")
        for item in expect_list(data.get("exclude", []), f"{field}.exclude")
    )
    if "ids" in data:
        ids = expect_list(data["ids"], f"{field}.ids")
        if not ids:
            raise RuleError(f"{field}.ids", "must name at least one contact")
        return Selector(ids=frozenset(parse_id(i, f"{field}.ids") for i in ids), exclude=exclude)
    if "relationships" in data:
        kinds = expect_list(data["relationships"], f"{field}.relationships")
        if not kinds:
            raise RuleError(f"{field}.relationships", "must name at least one relationship")
        for item in kinds:
            if not isinstance(item, str) or item not in RELATIONSHIPS:
                raise RuleError(
                    f"{field}.relationships",
                    f"{item!r} is not one of {', '.join(sorted(RELATIONSHIPS))}",
                )
        return Selector(relationships=frozenset(str(k) for k in kinds), exclude=exclude)
    if "privileged" in data:
        if data["privileged"] is not True:
            raise RuleError(f"{field}.privileged", "must be true (it selects counsel)")
        return Selector(privileged=True, exclude=exclude)
    return Selector(exclude=exclude)


def parse_quota(data: object, field: str) -> Quota:
    mapping = expect_mapping(data, field)
    for key in mapping:
        if key not in {"count", "minutes", "per"}:
            raise RuleError(f"{field}.{key}", "not a quota field (count, minutes, per)")
    if "per" not in mapping:
        raise RuleError(f"{field}.per", "is required: day, week, month or {rolling_days: N}")
    count = mapping.get("count")
    minutes = mapping.get("minutes")
    if count is None and minutes is None:
        raise RuleError(field, "needs count, minutes or both")
    return Quota(
        per=parse_period_spec(mapping["per"], f"{field}.per"),
        count=None
        if count is None
        else parse_count(count, f"{field}.count", minimum=0, maximum=COUNT_MAX),
        minutes=None
        if minutes is None
        else parse_count(minutes, f"{field}.minutes", minimum=0, maximum=MINUTES_MAX),
    )


def parse_period_spec(data: object, field: str) -> Period:
    if data in ("day", "week", "month"):
        return Period(str(data))
    if isinstance(data, Mapping) and set(data) == {"rolling_days"}:
        days = parse_count(
            data["rolling_days"], f"{field}.rolling_days", minimum=1, maximum=ROLLING_DAYS_MAX
        )
        return Period("rolling", days)
    raise RuleError(field, "must be day, week, month or {rolling_days: N}")


def parse_window(data: object, field: str) -> Window:
    mapping = expect_mapping(data, field)
    if set(mapping) != {"from", "to"}:
        raise RuleError(field, 'needs exactly `from` and `to`, as "HH:MM"')
    opens = parse_clock(mapping["from"], f"{field}.from")
    closes = parse_clock(mapping["to"], f"{field}.to")
    if not opens < closes:
        raise RuleError(field, "`from` must be earlier than `to` (no window across midnight)")
    return Window(opens, closes)


def parse_clock(data: object, field: str) -> time:
    if isinstance(data, str) and (match := _HHMM.fullmatch(data)):
        return time(int(match[1]), int(match[2]))
    raise RuleError(field, 'must be a time of day written "HH:MM"')


def parse_count(data: object, field: str, minimum: int, maximum: int) -> int:
    if isinstance(data, bool) or not isinstance(data, int):
        raise RuleError(field, "must be a whole number")
    if data < minimum:
        raise RuleError(field, f"must be at least {minimum}")
    if data > maximum:
        raise RuleError(field, f"must be at most {maximum}")
    return data


def check_length(text: str, field: str, limit: int) -> str:
    """``text`` if it has at most ``limit`` characters."""
    if len(text) > limit:
        raise RuleError(field, f"must be at most {limit} characters (got {len(text)})")
    return text


def parse_id(data: object, field: str) -> str:
    if isinstance(data, str) and _ID.fullmatch(data):
        return data
    raise RuleError(field, "must be an id (letters, digits, `-`, `_`, `.`, `:`; at most 64)")


def parse_enum(enum: type[E], data: object, field: str) -> E:
    try:
        if not isinstance(data, str):
            raise ValueError(data)
        return enum(data)
    except ValueError:
        choices = ", ".join(member.value for member in enum)
        raise RuleError(field, f"must be one of {choices}; got {data!r}") from None


def parse_wall_time(data: object, field: str) -> datetime:
    """An ISO 8601 local wall time or date, without offset."""
    if isinstance(data, datetime):
        wall = data
    elif isinstance(data, date):
        wall = datetime.combine(data, time())
    elif isinstance(data, str):
        try:
            wall = datetime.fromisoformat(data)
        except ValueError:
            raise RuleError(field, f"{data!r} is not an ISO 8601 time or date") from None
    else:
        raise RuleError(field, "must be an ISO 8601 local time (2024-03-04T10:00) or date")
    if wall.tzinfo is not None:
        raise RuleError(field, "must be a local wall time, without an offset")
    if not YEAR_MIN <= wall.year <= YEAR_MAX:
        raise RuleError(
            field, f"{wall.isoformat()} is out of range (years {YEAR_MIN} to {YEAR_MAX})"
        )
    return wall


def parse_instant(data: object, zone: ZoneInfo, field: str) -> datetime:
    wall = parse_wall_time(data, field)
    try:
        return wall_to_instant(wall, zone)
    except (OverflowError, ValueError):
        raise RuleError(field, f"{wall.isoformat()} is out of range") from None


def _optional_time(
    mapping: Mapping[str, Any], key: str, zone: ZoneInfo, field: str
) -> datetime | None:
    value = mapping.get(key)
    return None if value is None else parse_instant(value, zone, f"{field}.{key}")


def expect_mapping(data: object, field: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise RuleError(field, "must be a mapping")
    return data


def expect_list(data: object, field: str) -> list[Any]:
    if not isinstance(data, list):
        raise RuleError(field, "must be a list")
    return data
