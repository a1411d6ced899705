"""The atrocity-risk taxonomy: loads and validates taxonomy.yaml, the one place for indicators.

Other code that needs the indicator ids or their UN Framework risk factors imports them
from here (``INDICATOR_IDS``, ``load_taxonomy()``) rather than repeating the list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

CUE_KINDS = (
    "negation",
    "hypothetical",
    "prescriptive",
    "history",
    "commemoration",
    "commentary",
    "idiom",
    "sport",
    "entertainment",
    "disaster",
    "exercise",
    "judicial",
    "crime",
    "election",
    "protest",
    "quotation",
)
"""Context cue kinds, each handled by context.py."""


class TaxonomyError(ValueError):
    """taxonomy.yaml is malformed; the message names the bad key."""


@dataclass(frozen=True)
class Rule:
    """All slots must occur in one sentence, and none of ``unless``; a slot is a set of
    alternative concepts."""

    slots: tuple[frozenset[str], ...]
    weight: float
    unless: frozenset[str] = frozenset()
    severity: int = 0
    """At least this severity when the rule's sentence fires the indicator (0: the base)."""


@dataclass(frozen=True)
class Indicator:
    id: str
    label: str
    risk_factors: tuple[int, ...]
    severity: int
    rules: tuple[Rule, ...]
    keywords: tuple[str, ...]
    critical_killed: int | None = None
    critical_concepts: frozenset[str] = frozenset()
    critical_with: frozenset[str] = frozenset()
    warning_concepts: frozenset[str] = frozenset()
    warning_with: frozenset[str] = frozenset()
    watch_listed: bool = False
    """Listed (at severity 1) even when context lowered every match below the threshold."""


@dataclass(frozen=True)
class Taxonomy:
    indicators: tuple[Indicator, ...]
    concepts: Mapping[str, tuple[str, ...]]
    """Concept name to its expanded literal phrases."""
    cues: Mapping[str, tuple[str, ...]]
    """Cue kind to its expanded literal phrases."""
    fire_threshold: float
    by_id: Mapping[str, Indicator] = field(default_factory=dict)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(i.id for i in self.indicators)


def expand(pattern: str) -> list[str]:
    """Expand a pattern's "(a|b|)" alternations into lowercase literals, whitespace collapsed."""
    out = [" ".join(s.split()) for s in _expand(pattern.lower())]
    return [s for s in dict.fromkeys(out) if s]


def _expand(pattern: str) -> list[str]:
    start = pattern.find("(")
    if start < 0:
        return [pattern]
    depth = 0
    for end in range(start, len(pattern)):
        if pattern[end] == "(":
            depth += 1
        elif pattern[end] == ")":
            depth -= 1
            if depth == 0:
                break
    else:
        raise TaxonomyError(f"unbalanced parenthesis in pattern {pattern!r}")
    branches = _split_top(pattern[start + 1 : end])
    heads = [pattern[:start] + alt for b in branches for alt in _expand(b)]
    tails = _expand(pattern[end + 1 :])
    return [h + t for h in heads for t in tails]


def _split_top(inner: str) -> list[str]:
    parts, depth, last = [], 0, 0
    for i, ch in enumerate(inner):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(inner[last:i])
            last = i + 1
    parts.append(inner[last:])
    return parts


def trie_regex(
    literals: Iterable[str], *, ignore_case: bool = True, word_start: bool = True
) -> re.Pattern[str]:
    """One regex matching any literal up to a word boundary, longest first.

    A trie shape keeps Python's backtracking engine to a few comparisons per position,
    which is what lets hundreds of phrases run in one pass. With ``word_start=False`` the
    caller checks the start boundary itself: without a leading assertion the regex engine
    can skip straight to the possible first characters (capitals, for place names).
    """
    body = trie_body(literals)
    flags = re.IGNORECASE if ignore_case else 0
    start = r"(?<!\w)" if word_start else ""
    return re.compile(start + r"(?:" + body + r")(?!\w)", flags)


def trie_body(literals: Iterable[str]) -> str:
    """The trie-shaped alternation of the literals, without boundaries, to embed."""
    root: dict[str, Any] = {}
    for lit in literals:
        node = root
        for ch in lit:
            node = node.setdefault(ch, {})
        node[""] = True
    return _trie_to_regex(root)


def _trie_to_regex(node: dict[str, Any]) -> str:
    terminal = "" in node
    branches = []
    for ch in sorted(k for k in node if k):
        atom = r"\s+" if ch == " " else re.escape(ch)
        branches.append(atom + _trie_to_regex(node[ch]))
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if terminal:
        # Longer phrases first; the (?!\w) after the whole alternation backtracks to a
        # shorter one only when the longer does not end at a word boundary.
        body = "(?:" + body + ")?"
    return body


def _req(entry: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in entry:
        raise TaxonomyError(f"{where}: missing key {key!r}")
    return entry[key]


def _phrases(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise TaxonomyError(f"{where}: expected a list of pattern strings")
    return tuple(lit for p in raw for lit in expand(p))


def parse(data: Mapping[str, Any]) -> Taxonomy:
    """Validate the YAML document and build the taxonomy; errors name the bad key."""
    concepts = {
        str(name): _phrases(raw, f"concepts.{name}")
        for name, raw in _req(data, "concepts", "taxonomy").items()
    }
    raw_cues = _req(data, "cues", "taxonomy")
    unknown = set(raw_cues) - set(CUE_KINDS)
    if unknown:
        raise TaxonomyError(f"cues: unknown kind(s) {sorted(unknown)}; known: {CUE_KINDS}")
    cues = {kind: _phrases(raw_cues.get(kind, []), f"cues.{kind}") for kind in CUE_KINDS}
    indicators = []
    for n, entry in enumerate(_req(data, "indicators", "taxonomy")):
        where = f"indicators[{n}]"
        ind_id = str(_req(entry, "id", where))
        where = f"indicators.{ind_id}"
        rules = []
        for k, raw_rule in enumerate(_req(entry, "rules", where)):
            slots = []
            for slot in _req(raw_rule, "slots", f"{where}.rules[{k}]"):
                names = frozenset([slot] if isinstance(slot, str) else slot)
                missing = names - set(concepts)
                if missing:
                    raise TaxonomyError(f"{where}.rules[{k}]: unknown concept(s) {sorted(missing)}")
                slots.append(names)
            unless = frozenset(raw_rule.get("unless", []))
            if unless - set(concepts):
                raise TaxonomyError(f"{where}.rules[{k}].unless: unknown concept(s)")
            weight = float(raw_rule.get("weight", 0.8))
            level = int(raw_rule.get("severity", 0))
            rules.append(Rule(tuple(slots), weight, unless, level))
        severity = int(_req(entry, "severity", where))
        if not 0 <= severity <= 3:
            raise TaxonomyError(f"{where}.severity: must be 0-3, got {severity}")
        factors = tuple(int(f) for f in _req(entry, "risk_factors", where))
        if not factors or any(not 1 <= f <= 14 for f in factors):
            raise TaxonomyError(f"{where}.risk_factors: must be UN Framework factors 1-14")
        crit_concepts = frozenset(entry.get("critical_concepts", []))
        warn_concepts = frozenset(entry.get("warning_concepts", []))
        if (crit_concepts | warn_concepts) - set(concepts):
            raise TaxonomyError(f"{where}.critical_concepts/warning_concepts: unknown concept(s)")
        indicators.append(
            Indicator(
                id=ind_id,
                label=str(entry.get("label", ind_id)),
                risk_factors=factors,
                severity=severity,
                rules=tuple(rules),
                keywords=_phrases(entry.get("keywords", []), f"{where}.keywords"),
                critical_killed=entry.get("critical_killed"),
                critical_concepts=crit_concepts,
                critical_with=frozenset(entry.get("critical_with", [])),
                warning_concepts=warn_concepts,
                warning_with=frozenset(entry.get("warning_with", [])),
                watch_listed=bool(entry.get("watch_listed", False)),
            )
        )
    by_id = {i.id: i for i in indicators}
    if len(by_id) != len(indicators):
        raise TaxonomyError("indicators: duplicate id")
    for ind in indicators:
        if (ind.critical_with | ind.warning_with) - set(by_id):
            raise TaxonomyError(f"indicators.{ind.id}: unknown indicator id(s) in *_with")
    return Taxonomy(
        indicators=tuple(indicators),
        concepts=concepts,
        cues=cues,
        fire_threshold=float(data.get("fire_threshold", 0.5)),
        by_id=by_id,
    )


@cache
def load_taxonomy() -> Taxonomy:
    """The packaged taxonomy, parsed once per process."""
    text = resources.files("services.classify").joinpath("taxonomy.yaml").read_text("utf-8")
    return parse(yaml.safe_load(text))


def iter_literals(tax: Taxonomy) -> Iterator[tuple[str, str]]:
    """(literal, tag) pairs for every concept ("c:name") and cue ("q:kind") phrase."""
    for name, lits in tax.concepts.items():
        for lit in lits:
            yield lit, "c:" + name
    for kind, lits in tax.cues.items():
        for lit in lits:
            yield lit, "q:" + kind


INDICATOR_IDS: tuple[str, ...] = load_taxonomy().ids
"""The indicator ids, in taxonomy order."""
