"""Context cues that cancel or lower an indicator match, and what each one does.

Scopes, narrowest first:
- clause: negation ("no reports of", "denied") removes the concepts of its clause before
  any rule sees them (done in classifier.py, which knows the clause spans);
- sentence: history and idioms cancel; sport and entertainment all but cancel;
  hypothetical/future and prescriptive policy language lower, less so when the same
  sentence reports an event ("witnesses said", "credible reports of", "today"), and a
  little less when it only attributes ("the UN said");
  disasters cancel killing and displacement that no violence word explains;
- the rest of a sentence: words on signs and in slogans ("holding signs reading …") are
  the protesters', not a report (done in classifier.py, which knows the offsets);
- sentence, by date: a year five or more years before the report's latest year is history;
- document: a commemoration (except in a sentence that dates an act of violence to now),
  trial report, crime report, sports report or film review lowers every match, and so does
  atrocity-prevention commentary that marks no event as current, and a protest about
  violence elsewhere in which no one is attacked or arrested (decided by the classifier,
  which knows the report's time markers and its sentences).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

CANCEL = 0.0
HISTORY = CANCEL
IDIOM = CANCEL
SPORT = 0.1
HYPOTHETICAL = 0.4
HYPOTHETICAL_ATTRIBUTED = 0.55
HYPOTHETICAL_REPORTED = 0.75
PRESCRIPTIVE = 0.5
PRESCRIPTIVE_ATTRIBUTED = 0.7
PRESCRIPTIVE_REPORTED = 0.9
ELECTION = 0.6
JUDICIAL = 0.4
EXERCISE = 0.1
CRIME = 0.2
DISASTER = 0.1
DOC_GENRE = 0.2
DOCUMENT_CUES = frozenset(
    {
        "commemoration",
        "commentary",
        "sport",
        "entertainment",
        "judicial",
        "disaster",
        "crime",
        "protest",
    }
)
"""Cue kinds that can mark a whole document's genre."""
DOC_GENRE_MIN_CUES = 2
"""Distinct cue phrases of one kind that make a whole document commemorative, sport or film."""

VIOLENCE_CONCEPTS = frozenset(
    {"attack", "mass_kill", "ethnic_violence", "sexual", "crackdown", "airstrike", "incite",
     "bombing", "extrajudicial", "repression"}
)  # fmt: skip
"""Acts, not actors, that show a death or displacement was inflicted, not a disaster's
("a bus crash killed 30, police said" names the police, not violence)."""

DISASTER_SENSITIVE = frozenset(
    {"killing_of_civilians", "mass_displacement", "humanitarian_access_denied",
     "state_incapacity_or_request_for_help"}
)  # fmt: skip
DISASTER_DOCUMENT_SENSITIVE = DISASTER_SENSITIVE | {"attack_on_civilians_by_state_forces"}
"""In a disaster report with no act of violence anywhere, "police searched for 85 missing
after rivers killed 75" and "132 confirmed dead" are the disaster's, whatever the sentence."""


@dataclass(frozen=True)
class DocumentContext:
    """Document-level genre: decided once per report from distinct cue phrases."""

    commemorative: bool = False
    commentary: bool = False
    """Two distinct phrases of prevention policy or method ("risk assessment", "we
    consider", "never again"): lowers every match only when nothing in the report is
    witnessed or dated to now (decided by the caller)."""
    sport: bool = False
    entertainment: bool = False
    judicial: bool = False
    crime: bool = False
    """Two distinct crime cues ("the gunman", "mass shooting"): a lone attacker's crime."""
    protest: bool = False
    """Two distinct protest cues ("marched in", "in solidarity with", "consulate"): a rally
    about violence elsewhere; lowers every match only when no sentence has anyone harmed
    (decided by the caller)."""
    disaster: bool = False
    """Two distinct disaster cues ("floods", "landslides"): lowers killing, displacement and
    state forces' part only when the report names no violence (decided by the caller)."""

    @classmethod
    def from_cues(cls, distinct: dict[str, set[str]]) -> DocumentContext:
        if not distinct:
            return _NO_GENRE  # most reports: no genre cue at all

        def many(kind: str) -> bool:
            return len(distinct.get(kind, ())) >= DOC_GENRE_MIN_CUES

        return cls(
            commemorative=many("commemoration"),
            commentary=many("commentary"),
            sport=many("sport"),
            entertainment=many("entertainment"),
            judicial=many("judicial"),
            crime=many("crime"),
            protest=many("protest"),
            disaster=many("disaster"),
        )

    @property
    def factor(self) -> float:
        return DOC_GENRE if self.commemorative else self.factor_of_news

    @property
    def factor_of_news(self) -> float:
        """The factor for a sentence that dates an act of violence to now, which no
        commemoration lowers: the vigil after the weekend's massacre reports the massacre."""
        genre = self.sport or self.entertainment or self.judicial or self.crime
        return DOC_GENRE if genre else 1.0


_NO_GENRE = DocumentContext()


def sentence_factor(
    cues: Collection[str],
    *,
    reported: bool,
    violent: bool,
    indicator: str,
    attributed: bool = False,
) -> float:
    """How much a sentence's own cues let a match in it count (0 cancels, 1 keeps)."""
    if not cues:
        return 1.0
    if "history" in cues or "idiom" in cues:
        return HISTORY
    factor = 1.0
    if "sport" in cues or "entertainment" in cues:
        factor *= SPORT
    if "hypothetical" in cues:
        factor *= (
            HYPOTHETICAL_REPORTED
            if reported
            else HYPOTHETICAL_ATTRIBUTED
            if attributed
            else HYPOTHETICAL
        )
    if "prescriptive" in cues:
        factor *= (
            PRESCRIPTIVE_REPORTED
            if reported
            else PRESCRIPTIVE_ATTRIBUTED
            if attributed
            else PRESCRIPTIVE
        )
    if "exercise" in cues:
        factor *= EXERCISE
    if "judicial" in cues:
        factor *= JUDICIAL
    if "crime" in cues:
        factor *= CRIME
    if "election" in cues and not violent:
        factor *= ELECTION
    if "disaster" in cues and not violent and indicator in DISASTER_SENSITIVE:
        factor *= DISASTER
    return factor
