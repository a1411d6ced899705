"""Countries a report is about: pycountry's names plus a YAML gazetteer (places.yaml) of
variants, demonyms, capitals, cities and regions, matched case-sensitively in one pass.

Demonyms count half and not at all for ethnic groups ("ethnic Uzbeks", "Uzbek
communities"): a group named after a country says nothing about where events happen.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

import pycountry
import yaml

from services.classify.taxonomy import trie_regex

PlaceKind = Literal["name", "demonym", "city", "court", "actor"]
Hit = tuple[int, int, str]
"""A gazetteer form found in a text: start, end, the form as written."""
_WEIGHT: dict[PlaceKind, float] = {
    "name": 1.0,
    "demonym": 0.5,
    "city": 1.0,
    "court": 1.0,
    "actor": 1.0,
}
_TITLE_WEIGHT = 2.0
_FIRST_BONUS = 1.5
"""The first country named (in the title, else the text) is usually the subject."""
_SPONSOR_AFTER_PATTERN = r"-(?:backed|led|funded|brokered|made|supplied|based|trained|armed)\b"
_SPONSOR_AFTER = re.compile(_SPONSOR_AFTER_PATTERN)
"""A "U.S.-backed coalition" names a sponsor, not where events happen."""
_REFUGE_BEFORE = re.compile(
    r"\b(?:fled|flee|fleeing|escaped|escaping|crossed|crossing|arrived|arriving|sheltering|"
    r"sought refuge|taken refuge|refugees|arrival|made it|made it safely)\b"
    r"(?P<gap>[^.;]{0,40}?)\b(?P<prep>to|into|in)\s+"
    r"(?:neighbou?ring\s+|the\s+)?$",
    re.IGNORECASE,
)
_QUALIFIED = re.compile(r",\s+[A-Z][\w’'-]*(?:\s+[A-Z][\w’'-]*){0,2}\s+")
"""A town qualified by its district ("Gulu, Lapai Local Government Area of Niger State"):
a place after such a gap tells which of two same-named towns is meant."""
_LIST_GAP = re.compile(r"(?:,\s*(?:and\s+)?|\s+and\s+)")
"""What separates the places of a list ("into Mauritania and Burkina Faso")."""
_ORIGIN_GAP = re.compile(
    r"\b(?:fighting|violence|war|attacks?|clashes|conflict|persecution|insecurity|unrest|"
    r"hostilities|crackdown|bombing|bombardment|massacres?|killings|famine|homes|villages)\b",
    re.IGNORECASE,
)
"""People who "fled fighting in Mali" left Mali: "in" names where the events are."""
_SPEAKER_VERB_AFTER = re.compile(
    r"(?:\s+and\s+(?:the\s+)?[A-Z][\w’'-]*(?:\s+[A-Z][\w’'-]*){0,3})?\s+"
    r"(?:(?:has|have|had|also|swiftly|strongly|jointly)\s+)?"
    r"(?:condemned|condemns|called for|calls for|urged|urges|expressed|welcomed|welcomes|"
    r"pledged|pledges|imposed|imposes|demanded|demands|criticised|criticized|voiced|deplored|"
    r"denounced|sanctioned|sends|is sending|deploys|is deploying|dispatched|dispatches)\b"
)
"""Countries that condemn, urge or sanction from abroad speak about events elsewhere; those
that send troops or police act where they are sent."""
_SPEAKER_AFTER = re.compile(
    r"(?:['’]s)?\s+(?:U\.?N\.?\s+)?(?:State Department|Department of (?:State|Defen[cs]e)|"
    r"Defen[cs]e Department|"
    r"Embassy|embassy|[Aa]mbassador|[Ee]nvoy|Foreign (?:Ministry|Office|Minister|Secretary)|"
    r"foreign minister|[Mm]ission to the U|delegation|Treasury)\b"
)
"""A country's diplomats or ministries speaking ("the US State Department said") name who
talks, not where events happen: counted like a place of refuge."""
_ORIGIN_BEFORE = re.compile(
    r"\b(?:militias?|militiamen|fighters|gunmen|rebels|troops|forces|soldiers|mercenaries|"
    r"attackers|assailants|raiders|groups?)\s+from\s+(?:the\s+)?"
    r"(?:(?:neighbou?ring|[A-Z][\w’'-]*)\s+){0,3}$"
)
"""Armed men "from Sudan's neighbouring Darfur region" name where attackers come from, not
where the attack happens: counted like a place of refuge."""
_AFTER = re.compile(
    r"(?P<sponsor>"
    + _SPONSOR_AFTER_PATTERN
    + r")|(?P<speaker>"
    + _SPEAKER_AFTER.pattern
    + r")|(?P<verb>"
    + _SPEAKER_VERB_AFTER.pattern
    + r")"
)
"""Sponsor, speaker and speaker-verb contexts in one match: at most one can hold."""
_AFTER_STARTS = frozenset("-'’ \t\r\n\f\v\xa0")
_STATE_AFTER = re.compile(
    r"\s+(?:army|armed forces|military|junta|government|authorities|police|security forces|"
    r"air force|gendarmerie|soldiers|troops)\b"
)
"""A country's own state acting ("the Malian army", "the Burkinabè government") places
events there as surely as its name: such a demonym counts as the name."""
"""Characters that can start an _AFTER or _COURT_AFTER context: others skip the match."""
_COURT_AFTER = re.compile(
    r"(?:['’]s)?\s+(?:(?:[Hh]igh|[Ss]upreme|[Dd]istrict|[Rr]egional|[Ff]ederal|[Mm]ilitary|"
    r"[Cc]riminal|[Aa]ppeals?|[Ss]tate|[Nn]ational)\s+)*(?:[Cc]ourts?|[Tt]ribunal|[Jj]udges?|"
    r"[Pp]rosecutors?)\b"
)
_COURT_BEFORE = re.compile(
    r"\b(?:[Cc]ourt|[Tt]ribunal|[Tt]rial|[Jj]udges|[Pp]rosecutors)\s+(?:in|of)\s+(?:the\s+)?$"
)
"""Where a trial is held: "a German court", "a court in Koblenz", "Sweden's prosecutors"."""
_LOCATIVE_REVERSED = re.compile(
    r"\s+(?:(?:htro[Nn]|htuo[Ss]|tsa[Ee]|tse[Ww]|lartne[Cc]|nrehtro[Nn]|nrehtuo[Ss]|nretsa[Ee]|"
    r"nretse[Ww]|nretsa[Ee]-?htro[Nn]|nretse[Ww]-?htro[Nn]|nretsa[Ee]-?htuo[Ss]|"
    r"nretse[Ww]-?htuo[Ss])\s+)?(?:eht\s+)?(?:ni|ssorca|edisni|tuohguorht|nihtiw)(?!\w)"
)
"""Events happen "in eastern Congo": a place after "in", "across", "within"… (and "the", a
compass direction) is where, not who. Written backwards and matched on the text before the
place reversed: an anchored match instead of a look-behind search."""
_LOCATIVE_BONUS = 0.5
_COURT_ENDS = ("court", "tribunal", "trial", "judges", "prosecutors", "in", "of", "the")
_REFUGE_WORDS = ("fled", "flee", "escap", "cross", "arriv", "shelter", "refuge", "made it")
_REFUGE_WEIGHT = 0.5
"""Where refugees arrive ("fled into neighbouring Chad") is not where the events happen."""
_DATELINE_SPAN = 60
_DATELINE_WEIGHT = 0.25
_DATELINE_BEFORE = re.compile(r"[\s(\[]*(?:[A-Z][\w.'’-]*[\s,/]*){0,3}$")
_DATELINE_AFTER = re.compile(r"(?:[^\n.]{0,25}\)\s*[-–—:]|\s*/|\s*[-–—]\s|[^\n.]{0,25}\s[-–—]\s)")
_ETHNIC_BEFORE = re.compile(r"(?:ethnic|ethnically|fellow|minority)\W+(?:\w+\W+)?$", re.I)
_GROUP_AFTER = re.compile(
    r"^(?:\W+(?:and|or)\W+\w+)?\W+(?:groups?|communit(?:y|ies)|minorit(?:y|ies)|population|"
    r"men|women|residents|villages|neighbourhoods|neighborhoods|mahallas?|families|"
    r"civilians|origin|descent|ethnicity|diaspora|nationals?|citizens?|passport)\b",
    re.I,
)


@dataclass(frozen=True)
class Gazetteer:
    """Surface form (whitespace-collapsed) to (ISO alpha-2, kind), and the compiled matcher."""

    entries: Mapping[str, tuple[str, PlaceKind]]
    pattern: re.Pattern[str]

    def hits(self, text: str) -> list[Hit]:
        """Every gazetteer form in text, as (start, end, form), in order."""
        out = []
        for m in self.pattern.finditer(text):
            if m.start() and (text[m.start() - 1].isalnum() or text[m.start() - 1] == "_"):
                continue  # inside a word: "Osh" in "Gosh"
            out.append((m.start(), m.end(), m.group()))
        return out

    def sole_country(
        self, text: str, hits: list[Hit], title: str, title_hits: list[Hit]
    ) -> str | None:
        """The one country all the text's and title's place names point to, if they point to
        one and one of them counts at all: then weights cannot change the ranking, and
        count()'s look-behinds are spared (most reports name one country)."""
        entries = self.entries
        sole: str | None = None
        counts = False
        for where, found in ((text, hits), (title, title_hits)):
            for start, end, form in found:
                entry = entries.get(form) or entries.get(" ".join(form.split()))
                if entry is None:
                    continue
                code, kind = entry
                if sole is None:
                    sole = code
                elif code != sole:
                    return None
                if not counts:
                    counts = not (
                        (kind == "demonym" and _is_ethnic(where, start, end))
                        or (where[end : end + 1] == "-" and _SPONSOR_AFTER.match(where, end))
                    )
        return sole if counts else None

    def count(
        self,
        text: str,
        *,
        weight: float = 1.0,
        courts: set[str] | None = None,
        hits: list[Hit] | None = None,
        first: list[str] | None = None,
        lowered: str | None = None,
    ) -> dict[str, float]:
        """Weighted mentions per country in text, in order of first mention (datelines and
        places of refuge come last); ``courts`` collects court-seat countries.

        ``hits``: the forms found by a caller's own scan of ``text`` (the classifier's);
        ``first`` receives the first country named outright (not by a demonym, dateline,
        speaker or place of refuge); ``lowered``: the text lowercased, if the caller has it.
        """
        scores: dict[str, float] = {}
        secondary: dict[str, float] = {}  # datelines, places of refuge
        entries = self.entries
        low = text.lower() if lowered is None else lowered
        refuge = any(word in low for word in _REFUGE_WORDS)  # most reports: no look-behind
        refuge_end = -1  # where the last place of refuge ended, for lists of them
        found = self.hits(text) if hits is None else hits
        for i, (start, end, form) in enumerate(found):
            entry = entries.get(form) or entries.get(" ".join(form.split()))
            if entry is None:
                continue
            code, kind = entry
            if kind == "city" and text[end : end + 1] == "," and i + 1 < len(found):
                qualifier = entries.get(found[i + 1][2])
                if (
                    qualifier is not None
                    and qualifier[0] != code
                    and _QUALIFIED.fullmatch(text, end, found[i + 1][0])
                ):
                    continue  # a same-named town of the country its district names
            # Most places are followed by a comma or stop: no context can follow them.
            after = _AFTER.match(text, end) if text[end : end + 1] in _AFTER_STARTS else None
            if courts is not None and _court_seat(text, start, end):
                courts.add(code)  # "a German court", "a court in Koblenz": the trial's seat
            if kind == "demonym" and _is_ethnic(text, start, end):
                continue
            if after is not None and after.lastgroup == "sponsor":
                continue
            if start < _DATELINE_SPAN and _is_dateline(text, start, end):
                secondary[code] = secondary.get(code, 0.0) + _DATELINE_WEIGHT * weight
                continue
            if (
                (
                    refuge
                    and _after_preposition(text, start)
                    and (
                        (refuge_end >= 0 and _LIST_GAP.fullmatch(text, refuge_end, start))
                        or _is_refuge(text, start)
                    )
                )
                or after is not None
                or (
                    text.find(" from ", max(0, start - 60), start) >= 0
                    and _ORIGIN_BEFORE.search(text, max(0, start - 60), start)
                )
            ):
                secondary[code] = secondary.get(code, 0.0) + _REFUGE_WEIGHT * weight
                if refuge:
                    refuge_end = end
                continue
            if kind == "demonym" and after is None and _STATE_AFTER.match(text, end):
                kind = "name"
            scores[code] = scores.get(code, 0.0) + _WEIGHT[kind] * weight
            if kind not in ("demonym", "actor") and _is_locative(text, start):
                scores[code] += _LOCATIVE_BONUS * weight
            # A leader or armed group counts, but the first place named is the subject:
            # groups cross borders ("Al-Shabaab militants in Lamu County").
            if first is not None and not first and kind not in ("demonym", "actor"):
                first.append(code)
            if kind == "court" and courts is not None:
                courts.add(code)
        for code, score in secondary.items():
            scores[code] = scores.get(code, 0.0) + score
        return scores


def _is_dateline(text: str, start: int, end: int) -> bool:
    """ "(Nairobi, May 9) –", "Barcelona/Gaziantep –", "(New York) –": where the story was
    filed, which for UN and NGO releases is rarely where it happened."""
    return bool(_DATELINE_BEFORE.match(text, 0, start) and _DATELINE_AFTER.match(text, end))


def _word_ends_before(text: str, start: int, ends: tuple[str, ...]) -> bool | None:
    """Whether the word before the space before start ends in one of ``ends`` (lowercased):
    the string test that tells whether a look-behind search can match at all. None when
    more than one whitespace character comes first (the search decides)."""
    if start < 2 or not text[start - 1].isspace():
        return False
    prev = text[max(0, start - 16) : start - 1]
    if prev[-1:].isspace():
        return None
    return prev.lower().endswith(ends)


def _is_locative(text: str, start: int) -> bool:
    """_LOCATIVE_REVERSED within the 40 characters before start (one more for the word
    boundary before "in")."""
    if not text[start - 1 : start].isspace():
        return False
    before = text[max(0, start - 41) : start][::-1]
    m = _LOCATIVE_REVERSED.match(before)
    return m is not None and m.end() <= 40


def _court_seat(text: str, start: int, end: int) -> bool:
    if text[end : end + 1] in _AFTER_STARTS and _COURT_AFTER.match(text, end):
        return True
    if _word_ends_before(text, start, _COURT_ENDS) is False:
        return False
    return bool(_COURT_BEFORE.search(text, max(0, start - 30), start))


def _after_preposition(text: str, start: int) -> bool:
    """What _REFUGE_BEFORE needs right before a place ("into ", "neighbouring "), tested with
    string methods first: the look-behind search is costly and rarely needed."""
    before = text[max(0, start - 16) : start]
    return before[-1:].isspace() and before.rstrip().lower().endswith(_PREPOSITION_ENDS)


_PREPOSITION_ENDS = ("to", "in", "neighbouring", "neighboring", "the", "and", ",")


def _is_refuge(text: str, start: int) -> bool:
    """A place people fled to ("crossed into Chad", "fled to Mauritania and Burkina Faso"),
    not one they fled from ("fled fighting in Mali")."""
    m = _REFUGE_BEFORE.search(text, max(0, start - 60), start)
    if m is None:
        return False
    return not (m.group("prep").lower() == "in" and _ORIGIN_GAP.search(m.group("gap")))


def _is_ethnic(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - 25) : start].lower()
    ethnic_word = "ethnic" in before or "fellow" in before or "minority" in before
    return bool(
        (ethnic_word and _ETHNIC_BEFORE.search(text, max(0, start - 25), start))
        or _GROUP_AFTER.match(text[end : end + 40])
    )


def _is_alpha_2(code: str) -> bool:
    """XK (Kosovo) is user-assigned, so only the others are checked against pycountry."""
    try:
        return pycountry.countries.get(alpha_2=code) is not None
    except LookupError:
        return False


@cache
def _places_yaml() -> dict[str, Any]:
    raw = resources.files("services.classify").joinpath("places.yaml").read_text("utf-8")
    data: dict[str, Any] = yaml.safe_load(raw)
    return data


@cache
def gazetteer() -> Gazetteer:
    """pycountry's names, overridden and extended by places.yaml; built once per process."""
    entries: dict[str, tuple[str, PlaceKind]] = {}
    for country in pycountry.countries:
        for attr in ("name", "common_name", "official_name"):
            name = getattr(country, attr, None)
            if name and "," not in name and "(" not in name and not name.startswith("the "):
                entries[name] = (country.alpha_2, "name")
    data = _places_yaml()
    sections = (
        ("names", "name"),
        ("cities", "city"),
        ("leaders", "city"),
        ("actors", "actor"),
        ("courts", "court"),
        ("demonyms", "demonym"),
    )
    for section, kind in sections:
        for code, names in data.get(section, {}).items():
            if not isinstance(code, str) or (code != "XK" and not _is_alpha_2(code)):
                raise ValueError(
                    f"places.yaml {section}.{code!r}: not an ISO 3166-1 alpha-2 code (quote NO)"
                )
            for name in names:
                entries[" ".join(str(name).split())] = (code, kind)  # type: ignore[assignment]
    pattern = trie_regex(entries, ignore_case=False, word_start=False)
    return Gazetteer(entries=entries, pattern=pattern)


@cache
def subdivisions() -> dict[str, tuple[str, PlaceKind]]:
    """pycountry's provinces and states, for reports that name no country, city or leader:
    only names unique to one country and not ordinary words."""
    seen: dict[str, set[str]] = {}
    for sub in pycountry.subdivisions:
        seen.setdefault(sub.name, set()).add(sub.country_code)
    known = gazetteer().entries
    generic = set(_places_yaml().get("not_places", []))
    entries: dict[str, tuple[str, PlaceKind]] = {}
    for name, codes in seen.items():
        if len(codes) != 1 or name in known or len(name) <= 4 or name in generic:
            continue
        if "," in name or "(" in name or not name[0].isupper():
            continue
        entries[name] = (next(iter(codes)), "city")
    return entries


@cache
def _subdivision_first_words() -> frozenset[str]:
    return frozenset(name.split()[0] for name in subdivisions())


_CAPITALISED = re.compile(r"[A-Z][\w’'-]*(?:[ \t]+[A-Z][\w’'-]*){0,3}")


def _count_subdivisions(text: str) -> dict[str, float]:
    """Runs of capitalised words looked up whole and in parts: cheaper than a regex over
    four thousand names, for the few reports that need it."""
    entries = subdivisions()
    firsts = _subdivision_first_words()
    scores: dict[str, float] = {}
    for m in _CAPITALISED.finditer(text):
        words = m.group().split()
        if firsts.isdisjoint(words):
            continue  # no name starts with any of these words: most runs
        i = 0
        while i < len(words):
            for j in range(len(words), i, -1):
                entry = entries.get(" ".join(words[i:j]))
                if entry:
                    scores[entry[0]] = scores.get(entry[0], 0.0) + 1.0
                    i = j
                    break
            else:
                i += 1
    return scores


def countries(
    text: str,
    *,
    title: str | None = None,
    hint: str | None = None,
    judicial: bool = False,
    hits: list[Hit] | None = None,
    lowered: str | None = None,
) -> list[str]:
    """ISO alpha-2 codes, most cited first (title mentions count double); the hint leads.

    ``judicial``: the report is about a trial, so a named court's seat comes first.
    ``hits``: gazetteer forms already found in ``text`` by the caller's scan; ``lowered``:
    the text lowercased, if the caller has it.
    """
    gaz = gazetteer()
    title_hits = gaz.hits(title) if title else []
    if hits is not None:
        sole = gaz.sole_country(text, hits, title or "", title_hits)
        if sole is not None:
            return _with_hint([sole], hint)
    # Court seats only matter in a trial report: other reports skip looking for them.
    courts: set[str] | None = set() if judicial else None
    named: list[str] = []
    scores = gaz.count(text, courts=courts, hits=hits, first=named, lowered=lowered)
    first = named[0] if named else next(iter(scores), None)
    if title:
        named_in_title: list[str] = []
        in_title = gaz.count(
            title, weight=_TITLE_WEIGHT, courts=courts, first=named_in_title, hits=title_hits
        )
        first = named_in_title[0] if named_in_title else first
        for code, score in in_title.items():
            scores[code] = scores.get(code, 0.0) + score
    if not scores:
        scores = _count_subdivisions(text + "\n" + (title or ""))
        first = next(iter(scores), None)
    if first is not None:
        scores[first] += _FIRST_BONUS
    ranked = sorted(scores, key=lambda c: -scores[c])
    if judicial and courts:
        ranked = sorted(ranked, key=lambda c: c not in courts)
    return _with_hint(ranked, hint)


def _with_hint(ranked: list[str], hint: str | None) -> list[str]:
    if hint:
        code = hint.strip().upper()
        return [code, *(c for c in ranked if c != code)]
    return ranked
