"""A decision in plain words, in the reader's language.

``explain()`` turns the engine's ``Decision`` into sentences a person can act
on: which rule refused and what it says, the hours of a window, the quota and
how much of it is used, who imposed the rule and since when, which order it
overrides, how to appeal, and when the call or visit next becomes possible,
computed from the same rules and usage the engine decided with
(``kinline.rules.next_possible``). Dates and times are the facility's wall
clock, written in the reader's locale.

Pure: it reads its catalogs once, and nothing else. Sentences never name a
rule id or a reason code: those are in the structured fields beside them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from enum import StrEnum
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time
from babel.lists import format_list

from kinline.explain.catalog import Words, words
from kinline.rules.decide import NO_BOUND_MINUTES, Decision, Request
from kinline.rules.model import (
    Authority,
    Channel,
    Kind,
    Monitoring,
    Quota,
    Reason,
    Rule,
    Setting,
)
from kinline.rules.next_possible import clears, next_allowed
from kinline.rules.periods import local
from kinline.rules.usage import UsageSnapshot


class Role(StrEnum):
    """What a rule did in the decision."""

    REFUSES = "refuses"  # refused the session (or, with no rule, the list or the lack of a grant)
    ALLOWS = "allows"  # the grant the session is charged to
    GOVERNS = "governs"  # a limit the session must keep, and is counted by
    REQUIRES = "requires"  # conditions the session carries (monitoring, interpreter, setting)
    OUTRANKED = "outranked"  # a deny or limit that does not apply: the grant outranks it


@dataclass(frozen=True, slots=True)
class Named:
    """A rule named in words (its authority, and its case number when it has one)."""

    rule_id: str
    name: str


@dataclass(frozen=True, slots=True)
class Cause:
    """One rule's part in the decision, or the list or missing grant that refused it.

    ``sentence`` says everything a reader needs in their language; the other
    fields are the same facts for a page to lay out. ``next_possible``: when
    this rule stops refusing (None when it will not, or cannot be known).
    """

    role: Role
    reason: Reason | None
    sentence: str
    rule_id: str | None = None
    kind: Kind | None = None
    authority: Authority | None = None
    authority_words: str | None = None
    since: date | None = None
    until: date | None = None
    rule_text: str | None = None
    case_number: str | None = None
    overrides: tuple[Named, ...] = ()  # grants it applies to although they outrank it
    outranked_by: Named | None = None  # for OUTRANKED: the grant that takes precedence
    next_possible: datetime | None = None
    appeal_by: date | None = None


@dataclass(frozen=True, slots=True)
class Explanation:
    """A decision in words. ``next_possible``: for a refusal, the earliest moment
    the session could be allowed with the same rules and usage (None when never
    or unknown: not on the list, an open-ended deny); None when allowed."""

    allowed: bool
    reason: Reason | None
    language: str
    headline: str
    conditions: tuple[str, ...]
    causes: tuple[Cause, ...]
    next_possible: datetime | None
    next_sentence: str | None

    @property
    def sentences(self) -> tuple[str, ...]:
        """Everything, in reading order: headline, conditions, causes, next."""
        tail = () if self.next_sentence is None else (self.next_sentence,)
        return (
            self.headline,
            *self.conditions,
            *(cause.sentence for cause in self.causes),
            *tail,
        )

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


def explain(
    decision: Decision,
    request: Request,
    rules: Sequence[Rule] | Mapping[str, Rule],
    usage: UsageSnapshot,
    *,
    language: str,
    zone: ZoneInfo,
    appeals: Mapping[str, date] | None = None,
) -> Explanation:
    """Explain ``decision``, made for ``request`` against ``rules`` and ``usage``.

    ``rules``: the rules the engine decided with (a sequence, or a mapping by
    id as ``ExplainedDecision.rules``); more may be given (future ones make
    ``next_possible`` better informed). ``language``: the reader's (``es``,
    ``es-MX``; English without a catalog). ``zone``: the facility's.
    ``appeals``: appeal deadlines by rule id, when known (a notice's)."""
    listed = list(rules.values()) if isinstance(rules, Mapping) else list(rules)
    by_id = {rule.id: rule for rule in listed}
    w = words(language)
    context = _Context(w, zone, request, usage, by_id, appeals or {})
    if decision.allowed:
        return Explanation(
            allowed=True,
            reason=None,
            language=w.language,
            headline=_allowed_headline(w, request.channel, decision),
            conditions=_conditions(context, decision),
            causes=_allowed_causes(context, decision),
            next_possible=None,
            next_sentence=None,
        )
    reason = decision.reason or Reason.NO_GRANT
    moment = None
    if reason is not Reason.NOT_ON_LIST:
        moment = next_allowed(request, listed, usage, zone)
    return Explanation(
        allowed=False,
        reason=reason,
        language=w.language,
        headline=_refused_headline(w, request.channel),
        conditions=(),
        causes=_refusal_causes(context, decision, reason, listed),
        next_possible=moment,
        next_sentence=_next_sentence(context, moment),
    )


@dataclass(frozen=True, slots=True)
class _Context:
    w: Words
    zone: ZoneInfo
    request: Request
    usage: UsageSnapshot
    rules: Mapping[str, Rule]
    appeals: Mapping[str, date]

    def when(self, moment: datetime) -> str:
        here = moment.astimezone(self.zone)
        clock = format_time(here.time(), "short", locale=self.w.locale)
        return self.w.gettext("{date} at {time}").format(
            date=format_date(here.date(), "full", locale=self.w.locale),
            time=f"{clock} {here.tzname()}",
        )

    def day(self, moment: datetime) -> str:
        return format_date(local(moment, self.zone).date(), "long", locale=self.w.locale)

    def clock(self, wall: time) -> str:
        return format_time(wall, "short", locale=self.w.locale)

    def local_date(self, moment: datetime | None) -> date | None:
        return None if moment is None else local(moment, self.zone).date()


# Headlines and the allowed session's conditions.


def _allowed_headline(w: Words, channel: Channel, decision: Decision) -> str:
    """How long, and how it is monitored: what the person hears before the call."""
    allowed = _allowed_for(w, channel, decision.max_minutes or 0)
    if decision.monitoring is None:
        return allowed
    return " ".join((allowed, _monitoring_sentence(w, decision.monitoring)))


def _allowed_for(w: Words, channel: Channel, minutes: int) -> str:
    if minutes >= NO_BOUND_MINUTES:  # no rule bounds it: a day is the engine's "no bound"
        if channel is Channel.VIDEO:
            return w.gettext("Video call allowed, with no time limit.")
        if channel is Channel.VISIT:
            return w.gettext("Visit allowed, with no time limit.")
        return w.gettext("Call allowed, with no time limit.")
    if channel is Channel.VIDEO:
        text = w.ngettext(
            "Video call allowed for up to {num} minute.",
            "Video call allowed for up to {num} minutes.",
            minutes,
        )
    elif channel is Channel.VISIT:
        text = w.ngettext(
            "Visit allowed for up to {num} minute.",
            "Visit allowed for up to {num} minutes.",
            minutes,
        )
    else:
        text = w.ngettext(
            "Call allowed for up to {num} minute.",
            "Call allowed for up to {num} minutes.",
            minutes,
        )
    return text.format(num=minutes)


def _refused_headline(w: Words, channel: Channel) -> str:
    if channel is Channel.VIDEO:
        return w.gettext("Video call not allowed.")
    if channel is Channel.VISIT:
        return w.gettext("Visit not allowed.")
    return w.gettext("Call not allowed.")


def _conditions(context: _Context, decision: Decision) -> tuple[str, ...]:
    w = context.w
    out: list[str] = []
    if decision.interpreter is not None:
        out.append(
            w.gettext("An interpreter for {language} takes part.").format(
                language=_language_name(decision.interpreter, w.locale)
            )
        )
    if decision.setting is not None:
        out.append(
            w.gettext("It takes place in {setting}.").format(
                setting=_setting_words(w, decision.setting)
            )
        )
    return tuple(out)


def _monitoring_sentence(w: Words, monitoring: Monitoring) -> str:
    if monitoring is Monitoring.NONE:
        return w.gettext("It is not monitored.")
    if monitoring is Monitoring.LIVE:
        return w.gettext("Staff monitor it live.")
    return w.gettext("It is recorded.")


def _setting_words(w: Words, setting: Setting) -> str:
    if setting is Setting.CLOSED:
        return w.gettext("a closed booth")
    if setting is Setting.NON_CONTACT:
        return w.gettext("a non-contact room, through a partition")
    return w.gettext("an open visiting room")


def _language_name(code: str, reader: str) -> str:
    try:
        name = Locale.parse(code.replace("-", "_")).get_display_name(reader)
    except (UnknownLocaleError, ValueError):
        return code
    return name or code


# Causes.


def _allowed_causes(context: _Context, decision: Decision) -> tuple[Cause, ...]:
    causes: list[Cause] = []
    grant = context.rules.get(decision.charged_to or "")
    governing = set(decision.governed_by)
    for rule_id in decision.rules:
        rule = context.rules.get(rule_id)
        if rule is None:
            continue
        if rule is grant:
            causes.append(_cause(context, rule, Role.ALLOWS, None, _grant_words(context, rule)))
        elif rule_id in governing:
            causes.append(_cause(context, rule, Role.GOVERNS, None, _limit_words(context, rule)))
        elif rule.kind is Kind.REQUIRE:
            causes.append(
                _cause(context, rule, Role.REQUIRES, None, _require_words(context.w, rule))
            )
    for rule_id in decision.conflicts:
        rule = context.rules.get(rule_id)
        if rule is None or grant is None:
            continue
        name = Named(grant.id, _name(context.w, grant))
        sentence = context.w.gettext(
            "This rule does not apply to this session: {name} takes precedence over it."
        ).format(name=name.name)
        cause = _cause(context, rule, Role.OUTRANKED, None, [sentence])
        causes.append(replace(cause, outranked_by=name))
    return tuple(causes)


def _refusal_causes(
    context: _Context, decision: Decision, reason: Reason, rules: Sequence[Rule]
) -> tuple[Cause, ...]:
    w = context.w
    channels = _channels(w, context.request.channel)
    if reason is Reason.NOT_ON_LIST:
        sentence = w.gettext("This contact is not approved for {channels}.").format(
            channels=channels
        )
        return (Cause(role=Role.REFUSES, reason=reason, sentence=sentence),)
    if reason is Reason.NO_GRANT or not decision.rules:
        sentence = w.gettext("No rule in force allows {channels} with this contact.").format(
            channels=channels
        )
        starts = _future_grant_start(context, rules)
        return (Cause(role=Role.REFUSES, reason=reason, sentence=sentence, next_possible=starts),)
    causes: list[Cause] = []
    for rule_id in decision.rules:
        rule = context.rules.get(rule_id)
        if rule is None:
            continue
        moment = clears(rule, reason, context.request.at, context.usage, context.zone)
        parts = _refusal_words(context, rule, reason, moment)
        cause = _cause(context, rule, Role.REFUSES, reason, parts, moment)
        causes.append(cause)
    return tuple(causes)


def _cause(
    context: _Context,
    rule: Rule,
    role: Role,
    reason: Reason | None,
    parts: list[str],
    moment: datetime | None = None,
) -> Cause:
    w = context.w
    parts = [*parts, _authority_sentence(context, rule)]
    overrides = tuple(
        Named(grant.id, _name(w, grant))
        for grant in sorted(
            (context.rules[i] for i in rule.overrides if i in context.rules),
            key=lambda r: r.order,
        )
    )
    if overrides and role is Role.REFUSES:
        parts.append(
            w.gettext("It applies even over {names}.").format(
                names=format_list([named.name for named in overrides], locale=w.locale)
            )
        )
    appeal_by = context.appeals.get(rule.id)
    if appeal_by is not None:
        parts.append(
            w.gettext("You may appeal until {date}.").format(
                date=format_date(appeal_by, "long", locale=w.locale)
            )
        )
    return Cause(
        role=role,
        reason=reason,
        sentence=" ".join(parts),
        rule_id=rule.id,
        kind=rule.kind,
        authority=rule.authority,
        authority_words=_authority_words(w, rule.authority),
        since=context.local_date(rule.starts_at),
        until=context.local_date(rule.ends_at),
        rule_text=rule.text_in(w.language) or None,
        case_number=rule.case_number,
        overrides=overrides,
        next_possible=moment,
        appeal_by=appeal_by,
    )


def _refusal_words(
    context: _Context, rule: Rule, reason: Reason, moment: datetime | None
) -> list[str]:
    w = context.w
    channels = _channels(w, rule.channel)
    parts: list[str] = []
    if reason is Reason.DENIED:
        parts.append(
            w.gettext("This rule prohibits {channels} with this contact.").format(channels=channels)
        )
        if moment is not None:
            parts.append(w.gettext("It ends on {when}.").format(when=context.when(moment)))
        else:
            parts.append(w.gettext("It has no end date."))
    elif reason is Reason.OUTSIDE_WINDOW:
        parts.append(_window_sentence(context, rule))
        if moment is not None:
            parts.append(w.gettext("It opens again on {when}.").format(when=context.when(moment)))
    elif reason is Reason.TOO_SOON:
        parts.append(_gap_sentence(context, rule))
        if moment is not None:
            parts.append(
                w.gettext("The next one can start on {when}.").format(when=context.when(moment))
            )
    elif reason is Reason.QUOTA_EXHAUSTED and rule.quota is not None:
        parts.append(_quota_sentence(context, rule, rule.quota))
        if moment is not None and rule.quota.per.is_rolling:
            parts.append(w.gettext("A place frees up on {when}.").format(when=context.when(moment)))
        elif moment is not None:
            parts.append(
                w.gettext("The count starts again on {when}.").format(when=context.when(moment))
            )
        else:
            parts.append(w.gettext("No place will free up under this rule."))
    return parts


def _grant_words(context: _Context, rule: Rule) -> list[str]:
    w = context.w
    parts = [
        w.gettext("This rule allows {channels} with this contact.").format(
            channels=_channels(w, rule.channel)
        )
    ]
    if rule.quota is not None:
        parts.append(_quota_sentence(context, rule, rule.quota))
    if rule.max_minutes is not None:
        parts.append(_max_minutes_sentence(w, rule.max_minutes))
    return parts


def _limit_words(context: _Context, rule: Rule) -> list[str]:
    parts: list[str] = []
    if rule.window is not None:
        parts.append(_window_sentence(context, rule))
    if rule.min_gap_minutes is not None:
        parts.append(_gap_sentence(context, rule))
    if rule.quota is not None:
        parts.append(_quota_sentence(context, rule, rule.quota))
    if rule.max_minutes is not None:
        parts.append(_max_minutes_sentence(context.w, rule.max_minutes))
    return parts


def _require_words(w: Words, rule: Rule) -> list[str]:
    parts: list[str] = []
    if rule.monitoring is Monitoring.LIVE:
        parts.append(w.gettext("This rule requires live monitoring by staff."))
    elif rule.monitoring is Monitoring.RECORDED:
        parts.append(w.gettext("This rule requires the session to be recorded."))
    elif rule.monitoring is Monitoring.NONE:
        parts.append(w.gettext("This rule does not require monitoring."))
    if rule.interpreter is not None:
        parts.append(
            w.gettext("This rule requires an interpreter for {language}.").format(
                language=_language_name(rule.interpreter, w.locale)
            )
        )
    if rule.setting is not None:
        parts.append(
            w.gettext("This rule requires the visit to take place in {setting}.").format(
                setting=_setting_words(w, rule.setting)
            )
        )
    return parts


def _window_sentence(context: _Context, rule: Rule) -> str:
    assert rule.window is not None
    return context.w.gettext(
        "This rule allows {channels} only from {opens} to {closes}, every day."
    ).format(
        channels=_channels(context.w, rule.channel),
        opens=context.clock(rule.window.opens),
        closes=context.clock(rule.window.closes),
    )


def _gap_sentence(context: _Context, rule: Rule) -> str:
    w = context.w
    gap = rule.min_gap_minutes or 0
    if gap == 0:
        text = w.gettext("This rule does not allow a session to start before the last one ends.")
    else:
        text = w.ngettext(
            "This rule requires {num} minute between the end of one session and the next.",
            "This rule requires {num} minutes between the end of one session and the next.",
            gap,
        ).format(num=gap)
    last_end = context.usage.last_end(rule.id)
    if last_end is None:
        return text
    return " ".join(
        (text, w.gettext("The last one ended on {when}.").format(when=context.when(last_end)))
    )


def _quota_sentence(context: _Context, rule: Rule, quota: Quota) -> str:
    w = context.w
    used = context.usage.tally(rule.id, quota.per, context.request.at)
    return w.gettext("Allowed: {allowance} {period}. Used so far: {used}.").format(
        allowance=_amount(w, rule.channel, quota.count, quota.minutes),
        period=_period_words(w, quota),
        used=_amount(
            w,
            rule.channel,
            None if quota.count is None else used.sessions,
            None if quota.minutes is None else used.minutes,
        ),
    )


def _max_minutes_sentence(w: Words, minutes: int) -> str:
    return w.ngettext(
        "Each session may last up to {num} minute.",
        "Each session may last up to {num} minutes.",
        minutes,
    ).format(num=minutes)


def _amount(w: Words, channel: Channel, count: int | None, minutes: int | None) -> str:
    sessions = None if count is None else _sessions(w, channel, count)
    duration = (
        None
        if minutes is None
        else w.ngettext("{num} minute", "{num} minutes", minutes).format(num=minutes)
    )
    if sessions is not None and duration is not None:
        return w.gettext("{sessions} and {minutes}").format(sessions=sessions, minutes=duration)
    return sessions or duration or ""


def _sessions(w: Words, channel: Channel, count: int) -> str:
    if channel is Channel.VIDEO:
        text = w.ngettext("{num} video call", "{num} video calls", count)
    elif channel is Channel.VISIT:
        text = w.ngettext("{num} visit", "{num} visits", count)
    else:
        text = w.ngettext("{num} call", "{num} calls", count)
    return text.format(num=count)


def _period_words(w: Words, quota: Quota) -> str:
    per = quota.per
    if per.is_rolling:
        return w.ngettext("in any {num} day", "in any {num} days", per.days).format(num=per.days)
    if per.kind == "day":
        return w.gettext("a day")
    if per.kind == "week":
        return w.gettext("a week")
    return w.gettext("a month")


def _channels(w: Words, channel: Channel) -> str:
    if channel is Channel.VIDEO:
        return w.gettext("video calls")
    if channel is Channel.VISIT:
        return w.gettext("visits")
    return w.gettext("telephone calls")


def _authority_words(w: Words, authority: Authority) -> str:
    """Who imposed it, as a phrase: "imposed by the facility's security office"."""
    if authority is Authority.COURT_ORDER:
        return w.gettext("ordered by a court")
    if authority is Authority.SECURITY_MEASURE:
        return w.gettext("imposed by the facility's security office")
    if authority is Authority.SANCTION:
        return w.gettext("imposed as a disciplinary sanction")
    if authority is Authority.INCENTIVE:
        return w.gettext("set by the incentive program")
    return w.gettext("set by the facility's policy")


def _authority_sentence(context: _Context, rule: Rule) -> str:
    w = context.w
    words_ = _authority_words(w, rule.authority)
    if rule.starts_at is None:
        sentence = w.gettext("This rule is {authority}.").format(authority=words_)
    else:
        sentence = w.gettext("This rule is {authority}, in force since {since}.").format(
            authority=words_, since=context.day(rule.starts_at)
        )
    if rule.case_number:
        sentence = " ".join(
            (sentence, w.gettext("Case number: {case}.").format(case=rule.case_number))
        )
    return sentence


def _name(w: Words, rule: Rule) -> str:
    """A rule named by its authority, and its case number when it has one."""
    if rule.authority is Authority.COURT_ORDER:
        name = w.gettext("a court order")
    elif rule.authority is Authority.SECURITY_MEASURE:
        name = w.gettext("a security measure")
    elif rule.authority is Authority.SANCTION:
        name = w.gettext("a disciplinary sanction")
    elif rule.authority is Authority.INCENTIVE:
        name = w.gettext("the incentive program")
    else:
        name = w.gettext("the facility's policy")
    if rule.case_number:
        return w.gettext("{name} (case {case})").format(name=name, case=rule.case_number)
    return name


def _future_grant_start(context: _Context, rules: Sequence[Rule]) -> datetime | None:
    request = context.request
    starts = [
        rule.starts_at
        for rule in rules
        if rule.kind is Kind.GRANT
        and rule.channel is request.channel
        and rule.concerns(request.person)
        and rule.contacts.matches(request.contact)
        and rule.starts_at is not None
        and rule.starts_at > request.at
    ]
    return min(starts) if starts else None


def _next_sentence(context: _Context, moment: datetime | None) -> str:
    w = context.w
    channel = context.request.channel
    if moment is None:
        return w.gettext("No date can be given for the next one.")
    when = context.when(moment)
    if channel is Channel.VIDEO:
        return w.gettext("The next video call can be made from {when}.").format(when=when)
    if channel is Channel.VISIT:
        return w.gettext("The next visit can take place from {when}.").format(when=when)
    return w.gettext("The next call can be made from {when}.").format(when=when)
