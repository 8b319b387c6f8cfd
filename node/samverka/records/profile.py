"""Kommun profiles as the node holds them, the AI-rule guard and "Passar er".

A profile is an ordinary signed record under the fixed id ``kommunprofil``
(:data:`~samverka.protocol.validation.PROFILE_ID`); the newest version held is the
profile. Everything here reads the node's own store, so it works offline.

"Passar er" (:func:`suggestions`) ranks the solutions and use cases held by how many
*similar* kommuner (the same population band or the same SKR kommungrupp, from their
profiles) run them in production or adopted them, leaving out what breaks the kommun's
AI rules, what lies outside its interests (when it named any), its own records and what
it already adopted. Each suggestion says why it is there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from samverka.errors import SamverkaError
from samverka.i18n import N_, _, language
from samverka.protocol.aipolicy import AiFacts, Breach, Reason, breaches, facts_of, render
from samverka.protocol.kommuner import kommun_name
from samverka.protocol.validation import PROFILE_ID
from samverka.protocol.vocab import KOMMUN_GROUP, POPULATION_BAND, SERVICE_AREA
from samverka.store.store import StoredRecord
from samverka.v1 import records_pb2

R = records_pb2


class Holdings(Protocol):
    """The records the ranking and the rule checks read: a node's :class:`Store`, or a
    narrower view of one (the hub's web catalog passes its PUBLIC records only), so the
    node's ``samverka passar`` and the catalog's "Passar er" rank with the same code."""

    def get_record(self, origin: str, record_id: str) -> StoredRecord | None: ...

    def list_records(
        self, *, kinds: Sequence[int] = (), origins: Sequence[str] = ()
    ) -> list[StoredRecord]: ...


def held_profile(store: Holdings, origin: str) -> records_pb2.KommunProfile | None:
    """The kommun's current profile held here, or None (none, or retired)."""
    stored = store.get_record(origin, PROFILE_ID)
    if stored is None or stored.tombstone or stored.kind != R.RECORD_KIND_KOMMUN_PROFILE:
        return None
    return stored.record.kommun_profile


def held_profiles(store: Holdings) -> dict[str, records_pb2.KommunProfile]:
    """Every current profile held, by origin."""
    return {
        s.origin: s.record.kommun_profile
        for s in store.list_records(kinds=[R.RECORD_KIND_KOMMUN_PROFILE])
        if s.record_id == PROFILE_ID
    }


def tied_use_cases(store: Holdings, target: StoredRecord) -> list[records_pb2.UseCase]:
    """The use cases a record's AI facts come from: a use case itself; for a solution,
    those it names and those of any origin that name it in ``reuses``."""
    rec = target.record
    if rec.WhichOneof("body") == "use_case":
        return [rec.use_case]
    if rec.WhichOneof("body") != "solution":
        return []
    found: dict[tuple[str, str], records_pb2.UseCase] = {}
    for ref in rec.solution.use_cases:
        held = store.get_record(ref.origin, ref.id)
        if held is not None and not held.tombstone and held.record.HasField("use_case"):
            found[(ref.origin, ref.id)] = held.record.use_case
    for uc in store.list_records(kinds=[R.RECORD_KIND_USE_CASE]):
        if any(
            r.origin == target.origin and r.id == target.record_id
            for r in uc.record.use_case.reuses
        ):
            found[(uc.origin, uc.record_id)] = uc.record.use_case
    return list(found.values())


@dataclass(frozen=True, slots=True)
class RuleCheck:
    """A record held against the kommun's AI rules."""

    has_rules: bool
    facts: AiFacts
    breaches: tuple[Breach, ...] = ()


def check_rules(store: Holdings, own_origin: str, target: StoredRecord) -> RuleCheck:
    """Hold ``target`` against this kommun's AI rules (no profile, no rules: no breach)."""
    facts = facts_of(tied_use_cases(store, target))
    profile = held_profile(store, own_origin)
    if profile is None or not profile.HasField("ai_rules"):
        return RuleCheck(False, facts)
    return RuleCheck(True, facts, tuple(breaches(profile.ai_rules, facts)))


def profile_line(profile: records_pb2.KommunProfile, lang: str = "sv") -> str:
    """'C9, 10 000–24 999 invånare': how a kommun is described in reasons."""
    group = KOMMUN_GROUP.key(profile.kommun_group).upper()
    band = POPULATION_BAND.label(profile.population_band, lang)
    return ", ".join(p for p in (group, band) if p)


#: The texts of a suggestion's reasons (Swedish msgids, marked for the CLI's catalogs).
SUGGESTION_TEXTS: dict[str, str] = {
    "used_by": N_("används i drift eller har införts av {count} liknande kommun(er): {named}"),
    "similar": N_("{name} ({profile}; {same})"),
    "same_group": N_("samma kommungrupp ({group})"),
    "same_size": N_("samma storlek"),
    "interest": N_("inom ert intresseområde {area}"),
    "fits_rules": N_("följer era AI-regler"),
    "risk_unknown": N_("bryter inte mot era AI-regler, men riskklassen är okänd"),
}
#: How two shared traits are joined (the msgid crosscheck's lists share).
AND = N_("{items} och {last}")


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One solution or use case suggested to a kommun, with why."""

    origin: str
    record_id: str
    kind: int
    title: str
    service_area: int
    #: Similar kommuner that run it in production or adopted it, by kommunkod.
    kommuner: tuple[str, ...]
    #: Why, without words (:func:`say_reasons` puts them in words).
    why: tuple[Reason, ...] = field(default=())
    #: ``used_by``: each similar kommun, what it shares (``similar`` reasons).
    similar: tuple[Reason, ...] = field(default=())

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why, in Swedish (the web catalog and ``passar --json``)."""
        return tuple(say_reasons(self))


def say_reasons(
    suggestion: Suggestion, translate: Callable[[str], str] = lambda t: t, lang: str = "sv"
) -> list[str]:
    """A suggestion's reasons in words: Swedish by default; the CLI passes its gettext
    and language."""

    def similar(r: Reason) -> str:
        group = str(r.params.get("same_group", ""))
        same = [translate(SUGGESTION_TEXTS["same_group"]).format(group=group)] if group else []
        if r.params.get("same_size"):
            same.append(translate(SUGGESTION_TEXTS["same_size"]))
        joined = translate(AND).format(items=same[0], last=same[1]) if len(same) == 2 else same[0]
        profile = ", ".join(
            p
            for p in (
                str(r.params.get("group", "")),
                POPULATION_BAND.label(int(r.params.get("band", 0)), lang),
            )
            if p
        )
        return translate(SUGGESTION_TEXTS["similar"]).format(
            name=r.params["name"], profile=profile, same=joined
        )

    lines = []
    for r in suggestion.why:
        text = translate(SUGGESTION_TEXTS[r.code])
        if r.code == "used_by":
            named = ", ".join(similar(k) for k in suggestion.similar)
            lines.append(text.format(count=r.params["count"], named=named))
        elif r.code == "interest":
            lines.append(text.format(area=SERVICE_AREA.label(int(r.params["area"]), lang)))
        else:
            lines.append(text)
    return lines


def similar_kommuner(
    own: records_pb2.KommunProfile, profiles: dict[str, records_pb2.KommunProfile], own_origin: str
) -> dict[str, Reason]:
    """Origins whose profile shares the band or the group, each with what it shares
    (a ``similar`` reason: ``same_group`` the group shared, ``same_size`` 1 or 0)."""
    similar: dict[str, Reason] = {}
    for origin, other in profiles.items():
        if origin == own_origin:
            continue
        group = own.kommun_group and other.kommun_group == own.kommun_group
        size = own.population_band and other.population_band == own.population_band
        if group or size:
            similar[origin] = Reason(
                "similar",
                {
                    "name": kommun_name(origin),
                    "group": KOMMUN_GROUP.key(other.kommun_group).upper(),
                    "band": int(other.population_band),
                    "same_group": KOMMUN_GROUP.key(own.kommun_group).upper() if group else "",
                    "same_size": 1 if size else 0,
                },
            )
    return similar


def suggestions(store: Holdings, own_origin: str, *, limit: int = 20) -> list[Suggestion]:
    """ "Passar er" for ``own_origin``: see the module docstring. Empty without a profile."""
    own = held_profile(store, own_origin)
    if own is None:
        return []
    profiles = held_profiles(store)
    similar = similar_kommuner(own, profiles, own_origin)
    if not similar:  # (and list_records reads an empty origins list as "every origin")
        return []
    # Who (among the similar kommuner) runs or adopted each record.
    users: dict[tuple[str, str], set[str]] = defaultdict(set)
    adopted_here: set[tuple[str, str]] = set()
    for ad in store.list_records(kinds=[R.RECORD_KIND_ADOPTION]):
        ref = (ad.record.adoption.solution.origin, ad.record.adoption.solution.id)
        if ad.origin == own_origin:
            adopted_here.add(ref)
        elif ad.origin in similar and ad.record.adoption.status != R.USE_CASE_STATUS_ENDED:
            users[ref].add(ad.origin)
    for uc in store.list_records(kinds=[R.RECORD_KIND_USE_CASE], origins=list(similar)):
        if uc.record.use_case.status != R.USE_CASE_STATUS_PRODUCTION:
            continue
        users[(uc.origin, uc.record_id)].add(uc.origin)
        for reused in uc.record.use_case.reuses:
            users[(reused.origin, reused.id)].add(uc.origin)
    # A solution whose own named use case is in production at its origin runs there.
    for so in store.list_records(kinds=[R.RECORD_KIND_SOLUTION], origins=list(similar)):
        for named in so.record.solution.use_cases:
            if (named.origin, named.id) in users and named.origin == so.origin:
                users[(so.origin, so.record_id)].add(so.origin)
    interests = set(own.interests)
    found: list[Suggestion] = []
    for (origin, record_id), who in users.items():
        if origin == own_origin or (origin, record_id) in adopted_here:
            continue
        stored = store.get_record(origin, record_id)
        if stored is None or stored.tombstone:
            continue
        if stored.kind not in (R.RECORD_KIND_SOLUTION, R.RECORD_KIND_USE_CASE):
            continue
        if interests and stored.service_area not in interests:
            continue
        check = check_rules(store, own_origin, stored)
        if check.breaches:
            continue
        found.append(_suggestion(stored, who, similar, own, check))
    found.sort(key=lambda s: (-len(s.kommuner), s.title.casefold(), s.origin, s.record_id))
    return found[:limit]


def _suggestion(
    stored: StoredRecord,
    who: Iterable[str],
    similar: dict[str, Reason],
    own: records_pb2.KommunProfile,
    check: RuleCheck,
) -> Suggestion:
    kommuner = tuple(sorted(who))
    why = [Reason("used_by", {"count": len(kommuner)})]
    if own.interests and stored.service_area:
        why.append(Reason("interest", {"area": stored.service_area}))
    if check.has_rules:
        why.append(Reason("fits_rules" if check.facts.risk_known else "risk_unknown"))
    return Suggestion(
        origin=stored.origin,
        record_id=stored.record_id,
        kind=stored.kind,
        title=stored.title or stored.record_id,
        service_area=stored.service_area,
        kommuner=kommuner,
        why=tuple(why),
        similar=tuple(similar[k] for k in kommuner),
    )


class AgainstRules(SamverkaError):
    """Adopting a solution that breaks the kommun's own AI rules, without an override."""

    def __init__(self, ref: str, found: Iterable[Breach]) -> None:
        """In the CLI's language: it is raised for ``samverka adopt`` only."""
        said = "; ".join(render(b.reason, _, language()) for b in found)
        super().__init__(
            _("{ref} bryter mot kommunens AI-regler: {said}").format(ref=ref, said=said),
            hint=_(
                'för att ändå införa den, ange skälet: --trots-regel "skäl" '
                "(skälet och reglerna skrivs in i den signerade införandeposten)"
            ),
        )


def guard_adoption(
    store: Holdings, own_origin: str, target: StoredRecord | None, override: str | None, ref: str
) -> tuple[RuleCheck | None, records_pb2.PolicyOverride | None]:
    """Hold an adoption against the kommun's rules: raise AgainstRules when it breaks
    them without an override reason; return the check and the override to record."""
    if target is None:
        return None, None
    check = check_rules(store, own_origin, target)
    if not check.breaches:
        return check, None
    if override is None or not override.strip():
        raise AgainstRules(ref, check.breaches)
    recorded = records_pb2.PolicyOverride(reason=override.strip())
    for rule in sorted({b.rule for b in check.breaches}):
        recorded.rules.append(rule)  # type: ignore[arg-type]
    return check, recorded
