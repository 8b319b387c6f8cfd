"""A kommun's AI rules held against a solution or use case (pure, no I/O).

A kommun publishes its rules in its :class:`KommunProfile` (``ai_rules``): the highest
EU AI Act risk class it accepts, whether personal data may be processed, whether a DPIA
is required. Solutions carry no risk class of their own, so what a solution *is* comes
from the use cases tied to it (those it names in ``use_cases`` and those that name it in
``reuses``): the highest risk class among them, whether any processes personal data,
whether every one that does made a DPIA. :func:`breaches` says which rules that breaks,
for ``samverka adopt``, the catalog and "Passar er": each as a :class:`Reason` (a code
and its parameters) that the web shows in Swedish (:func:`render`) and the CLI renders
in the reader's language (``render(reason, _, language())``: the texts are msgids).

An unspecified ``max_risk_class`` sets no limit of the kommun's own, but the Act's
*unacceptable* class is prohibited for everyone and always a breach. A solution whose
use cases give no risk class breaks no risk rule; it is reported as unknown instead
(``AiFacts.risk_known``), since guessing a class would be worse than saying so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from samverka.i18n import N_
from samverka.protocol.vocab import RISK_CLASS, Vocabulary
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
class Reason:
    """Why, without words: a code (a key of :data:`TEXTS`, or of a caller's own table)
    and the values its text names. Vocabulary values stay numbers, so each language
    names them its own way."""

    code: str
    params: Mapping[str, int | str] = field(default_factory=dict)


#: The text of each reason's code (Swedish msgids, marked for the CLI's catalogs).
TEXTS: dict[str, str] = {
    "risk_class": N_("riskklassen är {risk}, kommunen accepterar högst {limit}"),
    "personal_data": N_("behandlar personuppgifter, vilket kommunens regler inte tillåter"),
    "dpia": N_(
        "behandlar personuppgifter utan gjord konsekvensbedömning (DPIA), som kommunens "
        "regler kräver"
    ),
    "max_risk": N_("högsta riskklass: {limit}"),
    "no_max_risk": N_("högsta riskklass: ingen egen gräns (oacceptabel risk är alltid förbjuden)"),
    "no_personal_data": N_("personuppgifter: får inte behandlas"),
    "personal_data_allowed": N_("personuppgifter: får behandlas"),
    "dpia_required": N_("konsekvensbedömning (DPIA): krävs"),
    "dpia_not_required": N_("konsekvensbedömning: krävs inte"),
}
#: The parameters that are vocabulary values (named in lower case).
VOCAB_PARAMS: dict[str, Vocabulary] = {"risk": RISK_CLASS, "limit": RISK_CLASS}


def _same(text: str) -> str:
    return text


def render(
    reason: Reason,
    translate: Callable[[str], str] = _same,
    lang: str = "sv",
    *,
    texts: Mapping[str, str] = TEXTS,
    vocab: Mapping[str, Vocabulary] = VOCAB_PARAMS,
) -> str:
    """``reason`` in words: Swedish by default (the web); the CLI passes its gettext
    and language."""
    values = {
        k: vocab[k].label(int(v), lang).lower() if k in vocab else v
        for k, v in reason.params.items()
    }
    return translate(texts[reason.code]).format(**values)


@dataclass(frozen=True, slots=True)
class Breach:
    """One rule a solution or use case breaks: the AiRule and why."""

    rule: int  # records_pb2.AiRule
    reason: Reason

    @property
    def text(self) -> str:
        """Why, in Swedish."""
        return render(self.reason)


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
                Reason("risk_class", {"risk": facts.risk_class, "limit": limit}),
            )
        )
    if rules.no_personal_data and facts.personal_data:
        found.append(Breach(R.AI_RULE_PERSONAL_DATA, Reason("personal_data")))
    if rules.dpia_required and facts.personal_data and not facts.dpia_done:
        found.append(Breach(R.AI_RULE_DPIA, Reason("dpia")))
    return found


def rule_reasons(rules: records_pb2.AiRules) -> list[Reason]:
    """The rules, one :class:`Reason` a line, for ``profile show`` and the kommun page."""
    return [
        Reason("max_risk", {"limit": int(rules.max_risk_class)})
        if rules.max_risk_class
        else Reason("no_max_risk"),
        Reason("no_personal_data" if rules.no_personal_data else "personal_data_allowed"),
        Reason("dpia_required" if rules.dpia_required else "dpia_not_required"),
    ]


def describe_rules(rules: records_pb2.AiRules) -> list[str]:
    """The rules as Swedish lines, for the kommun page."""
    return [render(r) for r in rule_reasons(rules)]
