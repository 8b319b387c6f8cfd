"""A kommun's AI rules held against a solution or use case (pure, no I/O).

A kommun publishes its rules in its :class:`KommunProfile` (``ai_rules``): the highest
EU AI Act risk class it accepts, whether personal data may be processed, whether a DPIA
is required. Solutions carry no risk class of their own, so what a solution *is* comes
from the use cases tied to it (those it names in ``use_cases`` and those that name it in
``reuses``): the highest risk class among them, whether any processes personal data,
whether every one that does made a DPIA. :func:`breaches` says which rules that breaks,
in Swedish, for ``samverka adopt``, the catalog and "Passar er".

An unspecified ``max_risk_class`` sets no limit of the kommun's own, but the Act's
*unacceptable* class is prohibited for everyone and always a breach. A solution whose
use cases give no risk class breaks no risk rule; it is reported as unknown instead
(``AiFacts.risk_known``), since guessing a class would be worse than saying so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from samverka.protocol.vocab import RISK_CLASS
from samverka.v1 import records_pb2

R = records_pb2


@dataclass(frozen=True, slots=True)
class AiFacts:
    """What the AI rules are held against, gathered from use cases."""

    #: The highest risk class given (0: none given).
    risk_class: int = 0
    personal_data: bool = False
    #: Every use case processing personal data made a DPIA (True when none does).
    dpia_done: bool = True
    #: How many use cases the facts come from.
    use_cases: int = 0

    @property
    def risk_known(self) -> bool:
        return self.risk_class != R.RISK_CLASS_UNSPECIFIED


@dataclass(frozen=True, slots=True)
class Breach:
    """One rule a solution or use case breaks: the AiRule and why, in Swedish."""

    rule: int  # records_pb2.AiRule
    text: str


def facts_of(use_cases: Iterable[records_pb2.UseCase]) -> AiFacts:
    """The facts of a solution from the use cases tied to it (or of one use case)."""
    risk, personal, dpia, count = 0, False, True, 0
    for uc in use_cases:
        count += 1
        # Enum numbers are ordered by risk (minimal 1 < limited 2 < high 3 < unacceptable 4).
        risk = max(risk, int(uc.risk_class))
        if uc.processes_personal_data:
            personal = True
            dpia = dpia and uc.impact_assessment_done
    return AiFacts(risk_class=risk, personal_data=personal, dpia_done=dpia, use_cases=count)


def accepted_risk(rules: records_pb2.AiRules) -> int:
    """The highest risk class the rules accept (high when the kommun set no limit)."""
    return int(rules.max_risk_class) or R.RISK_CLASS_HIGH


def breaches(rules: records_pb2.AiRules, facts: AiFacts) -> list[Breach]:
    """The rules ``facts`` break, each with its reason; empty when it fits."""
    found: list[Breach] = []
    limit = accepted_risk(rules)
    if facts.risk_known and facts.risk_class > limit:
        found.append(
            Breach(
                R.AI_RULE_RISK_CLASS,
                f"riskklassen är {RISK_CLASS.label(facts.risk_class).lower()}, "
                f"kommunen accepterar högst {RISK_CLASS.label(limit).lower()}",
            )
        )
    if rules.no_personal_data and facts.personal_data:
        found.append(
            Breach(
                R.AI_RULE_PERSONAL_DATA,
                "behandlar personuppgifter, vilket kommunens regler inte tillåter",
            )
        )
    if rules.dpia_required and facts.personal_data and not facts.dpia_done:
        found.append(
            Breach(
                R.AI_RULE_DPIA,
                "behandlar personuppgifter utan gjord konsekvensbedömning (DPIA), "
                "som kommunens regler kräver",
            )
        )
    return found


def describe_rules(rules: records_pb2.AiRules) -> list[str]:
    """The rules as Swedish lines, for ``profile show`` and the kommun page."""
    lines = [
        f"högsta riskklass: {RISK_CLASS.label(rules.max_risk_class).lower()}"
        if rules.max_risk_class
        else "högsta riskklass: ingen egen gräns (oacceptabel risk är alltid förbjuden)"
    ]
    lines.append(
        "personuppgifter: får inte behandlas"
        if rules.no_personal_data
        else "personuppgifter: får behandlas"
    )
    lines.append(
        "konsekvensbedömning (DPIA): krävs"
        if rules.dpia_required
        else "konsekvensbedömning: krävs inte"
    )
    return lines
