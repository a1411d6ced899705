"""Casualty figures: "at least 170 killed", "more than 2,000 injured", "hundreds of thousands
displaced", ranges ("200 to 300 dead") and vague amounts ("scores of people were killed").

A figure is tied to the nearest casualty word after it ("170 people ... killed"), or else
to one just before it ("killed at least 20", "death toll rose to 50"). Vague amounts count
as their lower bound (hundreds = 100, scores = 20) and ranges as their lower end, the same
convention as "at least".
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from typing import Literal, NamedTuple

from services.classify.taxonomy import trie_body, trie_regex

Kind = Literal["killed", "injured", "displaced"]

_WORD_VALUES = {
    "a dozen": 12, "dozens": 12, "scores": 20, "hundreds": 100, "thousands": 1000,
    "tens of thousands": 10_000, "hundreds of thousands": 100_000, "millions": 1_000_000,
    "a hundred": 100, "a thousand": 1000, "a million": 1_000_000, "half a million": 500_000,
    "a quarter of a million": 250_000, "quarter of a million": 250_000,
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_VAGUE = frozenset(
    {"dozens", "scores", "hundreds", "thousands", "tens of thousands", "hundreds of thousands",
     "millions"}
)  # fmt: skip
_SCALE = {"million": 1_000_000, "m": 1_000_000, "thousand": 1000, "k": 1000, "hundred": 100}

# Matched on lowercased text and with no leading assertion, so the regex engine jumps
# straight to digits and the first letters of number words; the start boundary is
# checked in figures().
_FIGURE = re.compile(
    r"(?:(?P<num>\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?:\s*(?P<scale>million|thousand|hundred|m|k)\b)?"
    rf"|(?P<word>{trie_body(_WORD_VALUES)})(?:\s+(?P<wscale>million|thousand|hundred)\b)?)"
    r"(?:\s*(?:-|–|to|and)\s*(?:\d{1,3}(?:,\d{3})+|\d+)(?:\s*(?:million|thousand))?)?"
    r"(?![\w%])"
)
_NOT_A_COUNT = re.compile(
    r"\s*(?:years?|yrs|%|per ?cent|percent|km|kilometres?|kilometers?|miles?|metres?|meters?"
    r"|days?|hours?|minutes?|weeks?|months?|am|pm|a\.m\.|p\.m\.|st|nd|rd|th|kg|tons?|tonnes?"
    r"|dollars?|euros?|usd|\$|million dollars|billion)\b",
    re.IGNORECASE,
)
_KIND_WORDS: dict[str, Kind] = {}
for _kind, _words in (
    ("killed", "killed killing killings dead deaths died murdered massacred slain executed "
     "casualties fatalities lives bodies toll perished"),
    ("injured", "injured wounded hurt injuries injuring wounding"),
    ("displaced", "displaced displacing refugees fled flee fleeing homeless idps uprooted "
     "driven expelled"),
):  # fmt: skip
    for _w in _words.split():
        _KIND_WORDS[_w] = _kind  # type: ignore[assignment]
_KIND = trie_regex(_KIND_WORDS)
_BREAK = re.compile(r"[.!?;]\s+(?=[^a-z\s])|\n")
"""A sentence end on the original text ("U.N. compound" is not one)."""
_DATE_BEFORE = re.compile(
    r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+$", re.IGNORECASE
)
_QUALIFIERS = re.compile(
    r"[\s,]*(?:(?:at least|more than|over|nearly|almost|about|around|some|up to|"
    r"an estimated|estimated|approximately|roughly|as many as|close to|a total of|another|"
    r"a further|at)\s+)*$"
)
"""Only these may stand between a casualty word and its figure ("killed at least 20")."""
_RISEN = re.compile(
    r"(?:risen|rose|climbed|reached|increased|jumped|stands|stood|is now|now|was|is|of)\s+"
    r"(?:to\s+|at\s+)?"
    r"(?:(?:at least|more than|over|nearly|almost|about|around|some)\s+)?$"
)
_RISEN_WINDOW = 160
_MIXED = re.compile(
    r"[^.;]{0,40}?\b(?:killed or (?:injured|wounded)|dead or (?:injured|wounded)|"
    r"dead and (?:injured|wounded)|killed and (?:injured|wounded)|casualties and injuries)\b"
)
"""A count of killed and injured together belongs to neither."""
_SUBSET = re.compile(r"(?:including|among them|among whom|of whom|of them)\s+$")
_AFTER_WINDOW = 70
_AMOUNT_MARGIN = 40


class Figure(NamedTuple):
    """One casualty figure with the offsets of the number in the original text (a named
    tuple: reports can hold dozens, and tuples are built fastest)."""

    kind: Kind
    value: int
    start: int
    end: int
    vague: bool


def parse_amount(match: re.Match[str]) -> tuple[int, bool] | None:
    """The value of a _FIGURE match (lower bound) and whether it is a vague amount."""
    return _parse(*match.group("num", "scale", "word", "wscale"))


def _parse(
    num: str | None, scale: str | None, word: str | None, wscale: str | None
) -> tuple[int, bool] | None:
    if num:
        raw = num.replace(",", "")
        value = float(raw)
        if scale:
            value *= _SCALE[scale.lower()]
        elif "." in raw:
            return None  # "2.5" without a scale is not a head count
        return int(value), False
    assert word is not None  # the regex has either a number or a word
    word = " ".join(word.lower().split())  # "tens of\nthousands" in hard-wrapped text
    base = _WORD_VALUES[word]
    if wscale:
        return base * _SCALE[wscale.lower()], False
    return base, word in _VAGUE


_DIGITS = re.compile(r"\d+")
_NUMBER_WORD = trie_regex(_WORD_VALUES)
NUMBER_WORDS: frozenset[str] = frozenset(_WORD_VALUES)
"""Words that start an amount ("hundreds", "twenty"), for callers that scan for them."""
KIND_WORDS: Mapping[str, Kind] = _KIND_WORDS
"""Casualty words and the figure kind each one counts; a caller that already scans the
text (the classifier's one pass) finds them itself and passes ``kinds`` to figures()."""


def figures(
    text: str,
    start: int = 0,
    end: int | None = None,
    *,
    kinds: list[tuple[int, int, Kind]] | None = None,
    number_words: list[int] | None = None,
    lowered: str | None = None,
) -> list[Figure]:
    """Casualty figures in text[start:end]; offsets are into ``text``.

    ``kinds``: the casualty words' (start, end, kind), in order, and ``number_words``: the
    offsets of number words, when the caller's own scan already found them; ``lowered``:
    the text lowercased with the same offsets, if the caller has it.
    """
    end = len(text) if end is None else end
    if kinds is None:
        kinds = [(m.start(), m.end(), _KIND_WORDS[m.group().lower()]) for m in
                 _KIND.finditer(text, start, end)]  # fmt: skip
    if not kinds:
        return []
    found: list[Figure] = []
    if lowered is None:
        lowered = text.lower()
    subject = lowered if len(lowered) == len(text) else text
    kind_ends = [k[1] for k in kinds]
    amounts = [
        m
        for m in _amounts(subject, kinds, start, end, number_words)
        if not _SUBSET.search(subject, max(0, m.start() - 16), m.start())
    ]  # "100 people, including 20 children": the 20 is part of the 100
    for i, m in enumerate(amounts):
        num, scale, word, wscale = m.group("num", "scale", "word", "wscale")
        parsed = _parse(num, scale, word, wscale)
        m_start, m_end = m.span()
        if parsed is None or _NOT_A_COUNT.match(text, m_end):
            continue
        if num and _DATE_BEFORE.search(text, max(0, m_start - 10), m_start):
            continue
        value, vague = parsed
        if not vague and num and _looks_like_year(num, scale):
            continue
        if value < 2 and not vague:
            continue
        next_start = amounts[i + 1].start() if i + 1 < len(amounts) else end
        kind = _nearest(text, subject, kinds, kind_ends, m_start, m_end, next_start)
        if kind is None or _mixed(subject, m_end, min(end, m_end + 60)):
            continue  # "killed or injured thousands", "dozens of dead and wounded": mixed
        found.append(Figure(kind, value, m_start, m_end, vague))
    return found


def _amounts(
    text: str,
    kinds: list[tuple[int, int, Kind]],
    start: int,
    end: int,
    number_words: list[int] | None,
) -> list[re.Match[str]]:
    """Amounts near casualty words only, parsed where a digit or number word starts:
    windows and anchored matches, not a scan of the whole text, keep figures cheap."""
    windows: list[list[int]] = []
    for k_start, k_end, _ in kinds:
        lo = max(start, k_start - _AFTER_WINDOW - _AMOUNT_MARGIN)
        hi = min(end, k_end + _RISEN_WINDOW + _AMOUNT_MARGIN)
        if windows and lo <= windows[-1][1]:
            windows[-1][1] = max(windows[-1][1], hi)
        else:
            windows.append([lo, hi])
    candidates: list[int] = []
    for lo, hi in windows:
        candidates += [m.start() for m in _DIGITS.finditer(text, lo, hi)]
        if number_words is None:
            candidates += [m.start() for m in _NUMBER_WORD.finditer(text, lo, hi)]
        else:
            # number_words are in text order: slice the window instead of filtering
            candidates += number_words[
                bisect_left(number_words, lo) : bisect_left(number_words, hi)
            ]
    out: list[re.Match[str]] = []
    for pos in sorted(set(candidates)):
        if pos and (text[pos - 1].isalnum() or text[pos - 1] in "_.,"):
            continue  # inside a word or a number: the "000" of "2,000"
        if out and pos < out[-1].end():
            continue
        m = _FIGURE.match(text, pos, end)
        if m:
            out.append(m)
    return out


def _mixed(subject: str, start: int, end: int) -> bool:
    """_MIXED, searched only where " or " or " and " (in every one of its phrases) occurs."""
    if subject.find(" or ", start, end) < 0 and subject.find(" and ", start, end) < 0:
        return False
    return _MIXED.match(subject, start, end) is not None


def _looks_like_year(num: str, scale: str | None) -> bool:
    return not scale and len(num) == 4 and num.isdigit() and 1900 <= int(num) <= 2099


def _nearest(
    text: str,
    subject: str,
    kinds: list[tuple[int, int, Kind]],
    kind_ends: list[int],
    start: int,
    end: int,
    next_start: int,
) -> Kind | None:
    """The casualty word a figure counts, never across a sentence end: one right before it
    ("killing at least 45"), the one a toll rose from ("the number killed has risen to
    171"), else the first one after it before the next figure ("170 people ... killed")."""
    n_before = bisect_right(kind_ends, start)  # kinds are in text order, so are their ends
    if n_before:
        _, k_end, kind = kinds[n_before - 1]
        if _QUALIFIERS.match(subject, k_end, start):
            return kind
        if (
            start - k_end <= _RISEN_WINDOW
            and _RISEN.search(subject, max(0, start - 40), start)
            and not _BREAK.search(text, k_end, start)
        ):
            return kind
    for k_start, _, kind in kinds[n_before:]:
        if end <= k_start < min(end + _AFTER_WINDOW, next_start):
            return None if _BREAK.search(text, end, k_start) else kind
    return None


def best(found: list[Figure]) -> dict[Kind, int]:
    """One figure per kind: the highest stated (sources differ, running totals grow)."""
    out: dict[Kind, int] = {}
    for fig in found:
        if fig.value > out.get(fig.kind, -1):
            out[fig.kind] = fig.value
    return out
