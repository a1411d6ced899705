"""Maps report text to atrocity-risk indicators, countries, casualties and severity.

One pass of one trie-shaped regex finds every concept (actor, action, target) and context
cue; each sentence then becomes a bitmask of concepts, the taxonomy's rules are tested as
mask intersections, and context.py decides how much each matching sentence counts.
Decisions are explained by their sentences: evidence spans are offsets into the text.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import TypedDict

from schemas.classification import Classification
from services.classify import context, numbers, places
from services.classify.taxonomy import (
    Indicator,
    Taxonomy,
    iter_literals,
    load_taxonomy,
    trie_body,
)

_BOUNDARY = re.compile(
    r"(?:\n[\"”’)\]]*+[ \t\r\n\f\v]*+|[.!?…][\"”’)\]]*+(?:[ \t\r\n\f\v]++|\Z))(?![a-z])"
)
"""Sentence ends: a line break, or a stop followed by space (not "U.S.", "2.5"), then
anything but a lowercase letter (a hard-wrapped line, "e.g. this"). Possessive runs, so a
rejected end is not retried shorter; it starts on a character class so the regex engine
skips through text in C."""
_CLAUSE = re.compile(
    r"[;:]|\s[-–—]\s|,\s*(?:but|while|whereas|although|though|yet)\b|\s(?:but|whereas)\s",
    re.IGNORECASE,
)
_HYPOTHETICAL_CLAUSE = re.compile(
    _CLAUSE.pattern + r"|,\s*(?:and|which|as|after|when|before)\b", re.IGNORECASE
)
"""A hypothetical word ("may", "could") governs its clause, ", and may constitute …" too."""
_EDGE = " \t\r\n-•*–—"
_MAX_EVIDENCE = 3
_WATCH_FLOOR = 0.2
"""A watch-listed indicator (hate speech) lowered to at least this is listed at severity 1;
other lowered matches leave the report at 0 (policy talk of "mass killings" is no risk)."""
_CASUALTY_FLOOR = 0.5
"""A figure counts only where a killing in the same sentence would count at least this much."""
_YEAR = re.compile(r"(?:1[89]|20)\d\d(?!\d)")
"""Starts on a literal digit so the engine skips to it; the left edge is checked in code."""
_COUNT_BEFORE = re.compile(
    r"\b(?:some|about|around|over|nearly|almost|approximately|estimated|least|than)\s+$",
    re.IGNORECASE,
)
_COUNT_AFTER = re.compile(
    r"\s+(?:[A-Z][\w’'-]*\s+(?:and\s+[A-Z][\w’'-]*\s+)?)?(?:people|persons|civilians|men|"
    r"women|children|victims|refugees|families|soldiers|troops|fighters|residents|villagers|"
    r"homes|houses|dead|killed)\b"
)
"""A four-digit number that counts ("some 2000 Palestinian and Lebanese civilians") is no year."""
_SINCE = re.compile(r"\bsince\b[^.;]{0,60}$", re.IGNORECASE)
"""A year after "since" opens something still going on, not history: "the worst violence
since the country's independence in 1999" dates the comparison, not the violence."""
_HISTORY_YEARS = 5
"""A year this much older than the latest year the report mentions marks history."""
_HISTORY_BEFORE = 2000
"""A year before this is history for a pipeline that reads today's news (Rwanda 1994,
Srebrenica 1995), whatever else the report mentions."""
_COMBATANTS_AFTER = re.compile(
    r"\s+(?:(?:other|more|government|army|security|regime|rebel|enemy|[A-Z][\w-]*)\s+){0,2}"
    r"(?:soldiers|troops|militants|rebels|fighters|insurgents|jihadists|terrorists|gunmen|"
    r"attackers|assailants|policemen|police officers|officers|servicemen|combatants|"
    r"peacekeepers|blue helmets)\b"
)
"""A killed figure counting fighters ("killing 20 soldiers") is a combatant casualty."""
_FALSE_CUES = frozenset({"May", "Will", "MAY", "WILL"})
_SCORE = itemgetter(0)
_SENTENCE = itemgetter(1)
"""Capitalised month and name, not the modal verbs."""


_Places = tuple[tuple[int, int], ...]
_Rare = tuple["numbers.Kind | None", bool, _Places, bool]
"""Casualty-figure kind, whether an amount starts with the phrase ("hundreds"), the
(offset, length) of place names in it, whether it is a cue only in lowercase ("may")."""
_Entry = int | tuple[int, "tuple[frozenset[str], frozenset[str]] | None", "_Rare | None"]
"""A lexicon phrase: its concept bitmask alone (most phrases, so they cost one lookup and
one OR), else the bitmask, (cue kinds, document-level cue kinds) or None, and the rarely
set rest or None."""
_PartialEntry = tuple[int, frozenset[str], "numbers.Kind | None"]


class _EvidenceData(TypedDict):
    """schemas.classification.Evidence as plain data, validated with the Classification."""

    start: int
    end: int
    text: str


class _MatchData(TypedDict):
    """schemas.classification.IndicatorMatch as plain data."""

    id: str
    risk_factors: list[int]
    confidence: float
    evidence: list[_EvidenceData]


@dataclass(frozen=True)
class _Rule:
    slot_masks: tuple[int, ...]
    weight: float
    unless_mask: int
    severity: int


@dataclass(frozen=True)
class _CompiledIndicator:
    spec: Indicator
    rules: tuple[_Rule, ...]
    any_mask: int
    critical_mask: int
    warning_mask: int


@dataclass(slots=True)
class _Sentence:
    start: int
    end: int
    mask: int = 0
    extra: int = 0
    """Bits from casualty figures, set after the scan."""
    cues: set[str] | None = None
    negations: list[int] | None = None
    hypotheticals: list[int] | None = None
    items: list[tuple[int, int]] | None = None
    """(offset, concept bits) of the sentence's phrases, for clause-scoped cues."""
    quoted: int | None = None
    """Where the words on a sign or in a slogan begin: what follows is the protesters'."""


class Classifier:
    """Stateless after construction and thread-safe: the CLI and the consumer share one."""

    def __init__(self, *, taxonomy: Taxonomy | None = None) -> None:
        self.taxonomy = taxonomy or load_taxonomy()
        names = list(self.taxonomy.concepts)
        self._bit = {name: 1 << n for n, name in enumerate(names)}
        lookup: dict[str, _PartialEntry] = {}
        for literal, tag in iter_literals(self.taxonomy):
            mask, cues, kind = lookup.get(literal, (0, frozenset(), None))
            if tag.startswith("c:"):
                mask |= self._bit[tag[2:]]
            else:
                cues = cues | {tag[2:]}
            lookup[literal] = (mask, cues, kind)
        # Casualty words ride along in the same pass: a phrase holding one ("death toll")
        # tells numbers.py where a figure's kind is, and bare ones are added.
        for word, kind in numbers.KIND_WORDS.items():
            lookup.setdefault(word, (0, frozenset(), kind))
        for word in numbers.NUMBER_WORDS:
            lookup.setdefault(word, (0, frozenset(), None))
        for literal, (mask, cues, kind) in lookup.items():
            if kind is None:
                hit = next((w for w in literal.split() if w in numbers.KIND_WORDS), None)
                if hit is not None:
                    lookup[literal] = (mask, cues, numbers.KIND_WORDS[hit])
        fragile = {c.lower() for c in _FALSE_CUES}
        # Place names ride along too (lowercased here, their case checked on a hit), and
        # so do places at the start of other phrases ("syrian forces", "pro-gaddafi").
        place_keys = {" ".join(form.lower().split()) for form in places.gazetteer().entries}
        for key in place_keys:
            lookup.setdefault(key, (0, frozenset(), None))
        self._lookup: Mapping[str, _Entry] = {
            lit: _entry(lit, mask, cues, kind, fragile, place_keys)
            for lit, (mask, cues, kind) in lookup.items()
        }
        # The hot-path form: one non-word character, then a phrase. Starting on a character
        # class lets the regex engine skip through words in C instead of trying the trie at
        # every letter; the text is scanned with a space in front so offsets shift by one.
        self._edge_pattern = re.compile(r"\W(" + trie_body(lookup) + r")(?!\w)")
        self._indicators = tuple(self._compile(ind) for ind in self.taxonomy.indicators)
        # The rules again as plain tuples for the hot loop: the slots that are one concept
        # make one mask that must be wholly present, the others must each meet the mask.
        self._rule_table = tuple(
            (
                ci.spec.id,
                ci.any_mask,
                tuple(
                    (
                        _or(s for s in rule.slot_masks if s and not s & (s - 1)),
                        tuple(s for s in rule.slot_masks if not s or s & (s - 1)),
                        rule.weight,
                        rule.unless_mask,
                        rule.severity,
                    )
                    for rule in ci.rules
                ),
            )
            for ci in self._indicators
        )
        self._any_rule = _or(ci.any_mask for ci in self._indicators)
        self._violent = self._mask(context.VIOLENCE_CONCEPTS)
        self._witnessed = self._bit["witnessed"]
        self._current = self._bit["current"]
        self._report = self._witnessed | self._current | self._bit["ongoing"]
        self._attribution = self._bit["attribution"]
        self._quantity = self._bit["quantity"]
        self._killed_figure = self._bit["killed_figure"]
        self._violent_report = self._bit["violent_report"]
        self._crisis_report = self._bit["crisis_report"]
        self._crisis = self._bit["crisis"]
        self._combatant = self._bit["combatant_casualty"]
        self._victims = self._mask({"civilians", "protesters", "ethnic"})
        self._harm = self._mask(
            {"kill", "attack", "crackdown", "extrajudicial", "detain", "detain_strong",
             "mass_kill", "sexual"}
        )  # fmt: skip
        self._harmed = self._mask({"state_force", "protesters", "civilians"})

    def _mask(self, names: frozenset[str] | set[str]) -> int:
        out = 0
        for name in names:
            out |= self._bit.get(name, 0)
        return out

    def _compile(self, ind: Indicator) -> _CompiledIndicator:
        """Rules as bitmasks: a rule holds when the sentence mask meets every slot mask."""
        rules = tuple(
            _Rule(
                tuple(self._mask(set(slot)) for slot in rule.slots),
                rule.weight,
                self._mask(set(rule.unless)),
                rule.severity,
            )
            for rule in ind.rules
        )
        any_mask = 0
        for rule in rules:
            any_mask |= rule.slot_masks[0]
        return _CompiledIndicator(
            ind,
            rules,
            any_mask,
            self._mask(set(ind.critical_concepts)),
            self._mask(set(ind.warning_concepts)),
        )

    def classify(
        self,
        text: str,
        *,
        report_id: str | None = None,
        title: str | None = None,
        country_hint: str | None = None,
    ) -> Classification:
        """Classify one report; ``title`` adds genre cues and countries, never evidence
        (evidence offsets are into ``text``), and ``country_hint`` leads the countries."""
        sentences = self._sentences(text)
        distinct: dict[str, set[str]] = {}
        lowered = _lower(text)
        kinds, number_words, place_hits = self._scan(text, lowered, sentences, distinct)
        if title:
            self._scan_title(title, distinct)
        doc = context.DocumentContext.from_cues(distinct)
        figures = (
            numbers.figures(text, kinds=kinds, number_words=number_words, lowered=lowered)
            if kinds
            else []
        )
        starts = [s.start for s in sentences]
        for fig in figures:
            sent = sentences[bisect_right(starts, fig.start) - 1]
            if fig.kind == "killed" and _COMBATANTS_AFTER.match(text, fig.end):
                if not sent.mask & self._victims:
                    sent.extra |= self._combatant
                continue
            sent.extra |= self._quantity | (self._killed_figure if fig.kind == "killed" else 0)
        figures = [f for f in figures if not _COMBATANTS_AFTER.match(text, f.end)]
        dated_past = _mark_old_years(text, lowered, sentences, starts)
        doc_mask = 0  # every concept the report names, for the report-wide tests below
        acts = 0  # the same, less the sentences a disaster cue marks ("floods struck")
        for sent in sentences:
            doc_mask |= sent.mask
            if sent.cues is None or "disaster" not in sent.cues:
                acts |= sent.mask
        violent_report = bool(acts & self._violent)
        crisis = violent_report or bool(doc_mask & self._crisis)
        if crisis:
            bits = self._crisis_report | (self._violent_report if violent_report else 0)
            for sent in sentences:
                sent.extra |= bits

        scores: dict[str, list[tuple[float, int]]] = {}
        levels: dict[tuple[str, int], int] = {}  # rules that set their own severity
        lowered_by = 1.0  # what the report as a whole lowers, beside its genre
        if doc.commentary and not doc_mask & (self._witnessed | self._current):
            lowered_by *= context.DOC_GENRE  # prevention commentary: no event seen or dated
        if doc.protest and not any(
            s.mask & self._harm and s.mask & self._harmed for s in sentences
        ):
            # A rally about violence elsewhere: its words name atrocities, but no sentence
            # outside the slogans has forces, protesters or civilians attacked or arrested.
            lowered_by *= context.DOC_GENRE
        if dated_past and not doc_mask & self._report:
            # Every year it names is long past and nothing marks an event as current
            # ("today", "on Monday", "witnesses said"): a retrospective, not news.
            lowered_by *= context.DOC_GENRE
        doc_factor = doc.factor * lowered_by
        news_factor = doc.factor_of_news * lowered_by
        disaster_doc = doc.disaster and not violent_report
        for idx, sent in enumerate(sentences):
            # The sentence's concepts minus those in a clause that a negation cue governs.
            if sent.negations:
                mask = self._clause_mask(text, lowered, sent, sent.negations, _CLAUSE)
            else:
                mask = sent.mask | sent.extra
            weights = self._rule_weights(mask)
            if not weights:
                continue  # most sentences: no rule holds
            reported = bool(mask & self._report)
            attributed = bool(mask & self._attribution)
            violent = bool(mask & self._violent)
            base = news_factor if violent and mask & self._current else doc_factor
            certain = self._certain(text, lowered, sent) if sent.hypotheticals else set()
            for ind_id, weight, level in weights:
                if level:
                    levels[ind_id, idx] = level
                if disaster_doc and ind_id in context.DISASTER_DOCUMENT_SENSITIVE:
                    weight *= context.DISASTER
                if not sent.cues:  # most sentences: nothing lowers the match
                    scores.setdefault(ind_id, []).append((weight * base, idx))
                    continue
                cues = sent.cues
                if ind_id in certain:
                    cues = cues - {"hypothetical"}
                factor = base * context.sentence_factor(
                    cues,
                    reported=reported,
                    violent=violent,
                    indicator=ind_id,
                    attributed=attributed,
                )
                scores.setdefault(ind_id, []).append((weight * factor, idx))

        casualties = self._casualties(figures, sentences, starts, doc)
        if "disaster" in distinct and not violent_report:
            casualties = {}  # a flood's dead are not an atrocity's: no figures to alert on
        matches, severity = self._decide(text, sentences, scores, casualties, levels)
        if severity == 0:
            casualties = {}  # figures describe an atrocity-risk event, and there is none
        # One validation of plain data: pydantic checks the nested matches in one call.
        return Classification.model_validate(
            {
                "id": report_id,
                "severity": severity,
                "countries": places.countries(
                    text,
                    title=title,
                    hint=country_hint,
                    judicial=doc.judicial,
                    hits=place_hits,
                    lowered=lowered,
                ),
                "indicators": matches,
                "casualties": casualties,
            }
        )

    def _certain(self, text: str, lowered: str, sent: _Sentence) -> set[str]:
        """Indicators a sentence shows outside its hypothetical clauses: "the starvation of
        civilians is a violation, and may constitute a war crime" reports the starvation."""
        if not sent.hypotheticals:
            return set()
        cues_at = [*(sent.negations or ()), *sent.hypotheticals]
        free = self._clause_mask(text, lowered, sent, cues_at, _HYPOTHETICAL_CLAUSE)
        return {ind_id for ind_id, _, _ in self._rule_weights(free)} if free else set()

    def _rule_weights(self, mask: int) -> list[tuple[str, float, int]]:
        """Each indicator's best rule weight for a sentence's concepts (bitmask tests)."""
        out: list[tuple[str, float, int]] = []
        if not mask & self._any_rule:
            return out
        for ind_id, any_mask, rules in self._rule_table:
            if not mask & any_mask:
                continue
            weight = 0.0
            level = 0
            for required, alternatives, rule_weight, unless, severity in rules:
                if (
                    mask & required != required
                    or mask & unless
                    or (rule_weight <= weight and severity <= level)
                ):
                    continue
                for alt in alternatives:
                    if not mask & alt:
                        break
                else:
                    if rule_weight > weight:
                        weight = rule_weight
                    if severity > level:
                        level = severity
            if weight:
                out.append((ind_id, weight, level))
        return out

    # -- scanning -----------------------------------------------------------------------

    @staticmethod
    def _sentences(text: str) -> list[_Sentence]:
        """Sentence spans covering the text: evidence is a sentence, rules look inside one."""
        out: list[_Sentence] = []
        last = 0
        for m in _BOUNDARY.finditer(text):
            stop = m.start()
            out.append(_Sentence(last, stop if text[stop] == "\n" else stop + 1))
            last = m.end()
        out.append(_Sentence(last, len(text)))
        return out

    def _scan(
        self,
        text: str,
        lowered: str,
        sentences: list[_Sentence],
        distinct: dict[str, set[str]],
    ) -> tuple[list[tuple[int, int, numbers.Kind]], list[int], list[places.Hit]]:
        """The one pass: every concept and cue, attached to its sentence; returns the
        casualty words and number words for numbers.py and the place names for places.py.
        This loop is the hot path."""
        lookup = self._lookup
        kinds: list[tuple[int, int, numbers.Kind]] = []
        number_words: list[int] = []
        place_hits: list[places.Hit] = []
        forms = places.gazetteer().entries
        subject = " " + lowered  # subject[i + 1] is text[i]: a match's start is its edge
        idx = 0
        sent = sentences[0]
        next_start = sentences[1].start if len(sentences) > 1 else len(text) + 1
        mask = 0
        items: list[tuple[int, int]] = []  # (offset, concepts), for clause-scoped cues
        quoted: list[tuple[_Sentence, int]] = []  # where a sign's or slogan's words begin
        for edge in self._edge_pattern.finditer(subject):
            pos = edge.start()
            if pos >= next_start:
                sent.mask = mask
                sent.items = items
                mask = 0
                items = []
                while pos >= next_start:
                    idx += 1
                    sent = sentences[idx]
                    next_start = (
                        sentences[idx + 1].start if idx + 1 < len(sentences) else len(text) + 1
                    )
            key = edge[1]  # the phrase without its edge
            entry = lookup.get(key)
            if entry is None:
                entry = lookup.get(" ".join(key.split()))
                if entry is None:
                    continue
            if isinstance(entry, int):  # most phrases: concepts only
                mask |= entry
                items.append((pos, entry))
                continue
            emask, cues, rare = entry
            if emask:
                mask |= emask
                items.append((pos, emask))
            if rare is not None:
                kind, number, in_places, fragile = rare
                for offset, length in in_places:
                    form = text[pos + offset : pos + offset + length]
                    if form in forms or " ".join(form.split()) in forms:  # case as written
                        place_hits.append((pos + offset, pos + offset + length, form))
                if kind is not None:
                    kinds.append((pos, edge.end() - 1, kind))
                if number:
                    number_words.append(pos)
                if fragile and text[pos : edge.end() - 1] in _FALSE_CUES:
                    continue
            if cues is None:
                continue
            kinds_of_cue, doc_cues = cues
            if sent.cues is None:
                sent.cues = set(kinds_of_cue)
            else:
                sent.cues |= kinds_of_cue
            for cue in doc_cues:
                distinct.setdefault(cue, set()).add(key)
            if "negation" in kinds_of_cue:
                if sent.negations is None:
                    sent.negations = []
                sent.negations.append(pos)
            if "hypothetical" in kinds_of_cue:
                if sent.hypotheticals is None:
                    sent.hypotheticals = []
                sent.hypotheticals.append(pos)
            if (
                "quotation" in kinds_of_cue
                and sent.quoted is None
                and _quotes(text, key, edge.end() - 1)
            ):
                sent.quoted = pos
                quoted.append((sent, pos))
        sent.mask = mask
        sent.items = items
        for sent, at in quoted:  # rare: a sign's or slogan's words end the sentence
            sent.items = [(p, bits) for p, bits in sent.items or () if p < at]
            sent.mask = _or(bits for _, bits in sent.items)
        return kinds, number_words, place_hits

    def _scan_title(self, title: str, distinct: dict[str, set[str]]) -> None:
        for edge in self._edge_pattern.finditer(" " + title.lower()):
            key = " ".join(edge[1].split())
            entry = self._lookup.get(key)
            if isinstance(entry, tuple) and entry[1]:
                for cue in entry[1][1]:
                    distinct.setdefault(cue, set()).add(key)

    def _clause_mask(
        self,
        text: str,
        lowered: str,
        sent: _Sentence,
        cue_positions: list[int],
        clauses: re.Pattern[str],
    ) -> int:
        """The sentence's concepts outside the clauses that hold a cue."""
        cuts = [sent.start]
        cuts += [m.start() for m in clauses.finditer(text, sent.start, sent.end)]
        cuts.append(sent.end + 1)
        negated = {bisect_right(cuts, p) for p in cue_positions}
        mask = 0
        for pos, bits in sent.items or ():
            if bisect_right(cuts, pos) not in negated:
                mask |= bits
        # Figures (bits added after the scan) are not clause-scoped.
        return mask | sent.extra

    # -- deciding -----------------------------------------------------------------------

    def _casualties(
        self,
        figures: list[numbers.Figure],
        sentences: list[_Sentence],
        starts: list[int],
        doc: context.DocumentContext,
    ) -> dict[numbers.Kind, int]:
        kept = []
        for fig in figures:
            sent = sentences[bisect_right(starts, fig.start) - 1]
            factor = doc.factor * context.sentence_factor(
                sent.cues or (),
                reported=bool(sent.mask & self._report),
                violent=bool(sent.mask & self._violent),
                indicator="killing_of_civilians",
                attributed=bool(sent.mask & self._attribution),
            )
            if factor >= _CASUALTY_FLOOR and not sent.negations:
                kept.append(fig)
        return numbers.best(kept)

    def _decide(
        self,
        text: str,
        sentences: list[_Sentence],
        scores: dict[str, list[tuple[float, int]]],
        casualties: Mapping[numbers.Kind, int],
        levels: Mapping[tuple[str, int], int],
    ) -> tuple[list[_MatchData], int]:
        threshold = self.taxonomy.fire_threshold
        fired: dict[str, list[tuple[float, int]]] = {}
        watch = False
        watched: dict[str, list[tuple[float, int]]] = {}
        # Candidates come in sentence order and sorts are stable: best score first, then
        # the earlier sentence.
        for ind_id, candidates in scores.items():
            strong = [s for s in candidates if s[0] >= threshold]
            if strong:
                strong.sort(key=_SCORE, reverse=True)
                fired[ind_id] = strong
            elif self.taxonomy.by_id[ind_id].watch_listed and any(
                s[0] >= _WATCH_FLOOR for s in candidates
            ):
                watch = True
                watched[ind_id] = sorted(
                    (s for s in candidates if s[0] >= _WATCH_FLOOR), key=_SCORE, reverse=True
                )
        severity = 1 if watch else 0
        matches: list[_MatchData] = []
        killed = casualties.get("killed") or 0
        for ci in self._indicators:
            if ci.spec.id in watched:
                matches.append(self._match(text, sentences, ci, watched[ci.spec.id]))
                continue
            if ci.spec.id not in fired:
                continue
            found = fired[ci.spec.id]
            level = max([ci.spec.severity, *(levels.get((ci.spec.id, i), 0) for _, i in found)])
            if not ci.spec.warning_with.isdisjoint(fired) or any(
                (sentences[idx].mask | sentences[idx].extra) & ci.warning_mask for _, idx in found
            ):
                level = max(level, 2)
            if (
                not ci.spec.critical_with.isdisjoint(fired)
                or (ci.spec.critical_killed is not None and killed >= ci.spec.critical_killed)
                or any(
                    (sentences[idx].mask | sentences[idx].extra) & ci.critical_mask
                    for _, idx in found
                )
            ):
                level = 3
            severity = max(severity, level)
            matches.append(self._match(text, sentences, ci, found))
        matches.sort(key=lambda m: -m["confidence"])
        return matches, severity

    @staticmethod
    def _match(
        text: str,
        sentences: list[_Sentence],
        ci: _CompiledIndicator,
        found: list[tuple[float, int]],
    ) -> _MatchData:
        """The indicator with its best sentences as evidence; confidence is the noisy-or
        of the sentence scores (several supporting sentences add up)."""
        miss = 1.0
        for score, _ in found:
            miss *= 1.0 - min(score, 0.99)
        evidence = [
            _evidence(text, sentences[idx])
            for _, idx in sorted(found[:_MAX_EVIDENCE], key=_SENTENCE)
        ]
        return {
            "id": ci.spec.id,
            "risk_factors": list(ci.spec.risk_factors),
            "confidence": round(min(0.99, 1.0 - miss), 2),
            "evidence": evidence,
        }


_HELD = ("holding", "carried", "carrying", "held")
_QUOTE_MARKS = frozenset("“”\"'‘’«:")


def _quotes(text: str, phrase: str, end: int) -> bool:
    """Whether a quotation cue opens quoted words: "signs reading" always does, "holding
    signs" only before a quotation mark, a colon or "reading" (not in "protesters holding
    signs were shot")."""
    if not phrase.startswith(_HELD):
        return True
    after = text[end : end + 12].lstrip()
    return after[:1] in _QUOTE_MARKS or after.lower().startswith(("reading", "saying", "that read"))


def _or(masks: Iterable[int]) -> int:
    out = 0
    for mask in masks:
        out |= mask
    return out


def _entry(
    literal: str,
    mask: int,
    cues: frozenset[str],
    kind: numbers.Kind | None,
    fragile: set[str],
    place_keys: set[str],
) -> _Entry:
    number = literal.split()[0] in numbers.NUMBER_WORDS or literal in numbers.NUMBER_WORDS
    in_places = _places_within(literal, place_keys)
    is_fragile = literal in fragile
    rare: _Rare | None = None
    if kind is not None or number or in_places or is_fragile:
        rare = (kind, number, in_places, is_fragile)
    if not cues and rare is None:
        return mask  # most phrases: concepts only, one lookup and one OR
    return mask, ((cues, cues & context.DOCUMENT_CUES) if cues else None), rare


def _places_within(literal: str, place_keys: set[str]) -> tuple[tuple[int, int], ...]:
    """(offset, length) of the longest place name starting at each word start of a phrase."""
    starts = [0] + [i + 1 for i, ch in enumerate(literal) if ch in " -"]
    ends = [i for i, ch in enumerate(literal) if ch in " -'’"] + [len(literal)]
    out: list[tuple[int, int]] = []
    for start in starts:
        if out and start < out[-1][0] + out[-1][1]:
            continue  # inside the place just found: "Sudan" in "South Sudan"
        for end in reversed(ends):
            if end > start and literal[start:end] in place_keys:
                out.append((start, end - start))
                break
    return tuple(out)


def _lower(text: str) -> str:
    """Lowercase with the same offsets: the few letters whose lowercase is longer ("İ")
    are kept as they are."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(ch if len(ch.lower()) != 1 else ch.lower() for ch in text)


def _mark_old_years(text: str, lowered: str, sentences: list[_Sentence], starts: list[int]) -> bool:
    """Give the "history" cue to sentences dated well before the report's latest year;
    True when every year the report names is before _HISTORY_BEFORE."""
    years = [
        (m.start(), int(m.group()))
        for m in _YEAR.finditer(text)
        if not (m.start() and text[m.start() - 1].isalnum())
        and not _COUNT_AFTER.match(text, m.end())
        and not _COUNT_BEFORE.search(text, max(0, m.start() - 16), m.start())
    ]
    if "since" in lowered:  # most reports: no year can follow "since"
        years = [(p, y) for p, y in years if not _SINCE.search(text, max(0, p - 70), p)]
    if not years:
        return False
    latest = max(y for _, y in years)
    for pos, year in years:
        if latest - year >= _HISTORY_YEARS or year < _HISTORY_BEFORE:
            sent = sentences[bisect_right(starts, pos) - 1]
            if sent.cues is None:
                sent.cues = set()
            sent.cues.add("history")
    return latest < _HISTORY_BEFORE


def _evidence(text: str, sent: _Sentence) -> _EvidenceData:
    start, end = sent.start, sent.end
    while start < end and text[start] in _EDGE:
        start += 1
    while end > start and text[end - 1] in _EDGE:
        end -= 1
    return {"start": start, "end": end, "text": text[start:end]}
