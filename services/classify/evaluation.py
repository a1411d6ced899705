"""``make eval``: the classifier against labelled reports, beside a naive keyword baseline.

Tune on ``dev.jsonl`` only; ``heldout.jsonl`` is reported, never tuned on. Countries are
judged without the report's country hint (the hint would make them trivially right).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas.classification import Casualties, Classification, IndicatorMatch
from services.classify.classifier import Classifier
from services.classify.places import gazetteer
from services.classify.taxonomy import INDICATOR_IDS, Taxonomy, load_taxonomy, trie_regex

DATA = Path(__file__).resolve().parents[2] / "tests" / "data" / "reports"
SPLITS = ("dev", "heldout")
ALERT_SEVERITY = 2
KINDS = ("killed", "injured", "displaced")
TARGETS = {
    "alert_recall": 0.90,
    "negatives_silent": 0.90,
    "alert_f1": 0.90,
    "indicator_micro_f1": 0.80,
    "country_accuracy": 0.95,
}
"""Issue 3's targets, judged on the held-out split."""


@dataclass(frozen=True)
class Report:
    """One labelled report (a line of dev.jsonl / heldout.jsonl)."""

    id: str
    text: str
    title: str | None
    country: str | None
    should_alert: bool
    severity: int
    indicators: frozenset[str]
    casualties: dict[str, int | None]

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Report:
        cas = d.get("casualties") or {}
        return cls(
            id=str(d["id"]),
            text=str(d["text"]),
            title=d.get("title"),
            country=d.get("country"),
            should_alert=bool(d["should_alert"]),
            severity=int(d.get("severity") or 0),
            indicators=frozenset(d.get("indicators") or ()),
            casualties={k: cas.get(k) for k in KINDS},
        )


def load(split: str, data: Path = DATA) -> list[Report]:
    """A split's reports; lines that do not parse (a file being written) are skipped."""
    path = data / f"{split}.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text("utf-8").splitlines():
        if not line.strip():
            continue
        try:
            out.append(Report.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError):
            continue
    return out


@dataclass
class PRF:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def add(self, predicted: bool, actual: bool) -> None:
        self.tp += predicted and actual
        self.fp += predicted and not actual
        self.fn += actual and not predicted


@dataclass
class Scores:
    """Every figure ``make eval`` prints for one system on one split."""

    reports: int = 0
    alert: PRF = field(default_factory=PRF)
    negatives: int = 0
    negatives_silent: int = 0
    indicators: dict[str, PRF] = field(default_factory=lambda: {i: PRF() for i in INDICATOR_IDS})
    country_total: int = 0
    country_right: int = 0
    casualty_total: int = 0
    casualty_right: int = 0
    severity_right: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def micro(self) -> PRF:
        out = PRF()
        for prf in self.indicators.values():
            out.tp += prf.tp
            out.fp += prf.fp
            out.fn += prf.fn
        return out

    @property
    def silent_share(self) -> float:
        return self.negatives_silent / self.negatives if self.negatives else 0.0

    @property
    def country_accuracy(self) -> float:
        return self.country_right / self.country_total if self.country_total else 0.0

    @property
    def severity_accuracy(self) -> float:
        return self.severity_right / self.reports if self.reports else 0.0

    @property
    def casualty_accuracy(self) -> float:
        return self.casualty_right / self.casualty_total if self.casualty_total else 0.0

    def summary(self) -> dict[str, float]:
        return {
            "alert_precision": self.alert.precision,
            "alert_recall": self.alert.recall,
            "alert_f1": self.alert.f1,
            "negatives_silent": self.silent_share,
            "indicator_micro_f1": self.micro.f1,
            "country_accuracy": self.country_accuracy,
            "casualty_accuracy": self.casualty_accuracy,
            "severity_accuracy": self.severity_accuracy,
        }


def score(reports: Iterable[Report], classify: Callable[[Report], Classification]) -> Scores:
    """Compare predictions with labels; casualty figures are judged wherever either side
    gives one (so a figure invented for a negative counts against)."""
    out = Scores()
    for rep in reports:
        result = classify(rep)
        out.reports += 1
        alerted = result.severity >= ALERT_SEVERITY
        out.alert.add(alerted, rep.should_alert)
        out.severity_right += result.severity == rep.severity
        if not rep.should_alert:
            out.negatives += 1
            out.negatives_silent += not alerted
        if alerted != rep.should_alert:
            out.errors.append(f"{rep.id}: severity {result.severity}, labelled {rep.severity}")
        predicted = {m.id for m in result.indicators}
        for ind, prf in out.indicators.items():
            prf.add(ind in predicted, ind in rep.indicators)
        if rep.country:
            out.country_total += 1
            out.country_right += bool(result.countries) and result.countries[0] == rep.country
        for kind in KINDS:
            got = getattr(result.casualties, kind)
            want = rep.casualties.get(kind)
            if got is not None or want is not None:
                out.casualty_total += 1
                out.casualty_right += got == want
    return out


class KeywordBaseline:
    """EMM-style alert definitions: any keyword of an indicator fires it, with no context.

    Severity is the highest base severity of the indicators found; the country is the
    first country name found; casualties are the first "N killed/injured/displaced".
    """

    _FIGURE = re.compile(
        r"(\d[\d,]*)\s+(?:people\s+)?(?:were\s+|have\s+been\s+)?(killed|injured|displaced)", re.I
    )

    def __init__(self, taxonomy: Taxonomy | None = None) -> None:
        self.taxonomy = taxonomy or load_taxonomy()
        self._keyword_of: dict[str, str] = {}
        for ind in self.taxonomy.indicators:
            for kw in ind.keywords:
                self._keyword_of.setdefault(kw, ind.id)
        self._pattern = trie_regex(self._keyword_of)

    def classify(self, text: str, *, title: str | None = None) -> Classification:
        found: dict[str, IndicatorMatch] = {}
        for m in self._pattern.finditer(text):
            ind_id = self._keyword_of.get(" ".join(m.group().lower().split()))
            if ind_id and ind_id not in found:
                spec = self.taxonomy.by_id[ind_id]
                found[ind_id] = IndicatorMatch(
                    id=ind_id, risk_factors=list(spec.risk_factors), confidence=0.5, evidence=[]
                )
        severity = max((self.taxonomy.by_id[i].severity for i in found), default=0)
        gaz = gazetteer()
        first = next(
            (gaz.entries[m.group()][0] for m in gaz.pattern.finditer((title or "") + "\n" + text)
             if m.group() in gaz.entries and gaz.entries[m.group()][1] == "name"),
            None,
        )  # fmt: skip
        figures: dict[str, int] = {}
        for m in self._FIGURE.finditer(text):
            figures.setdefault(m.group(2).lower(), int(m.group(1).replace(",", "")))
        return Classification(
            severity=severity,
            countries=[first] if first else [],
            indicators=list(found.values()),
            casualties=Casualties(**figures),
        )


def run(data: Path = DATA) -> dict[str, dict[str, Scores]]:
    """Scores per split ("dev", "heldout") and system ("tocsin", "keywords")."""
    tocsin = Classifier()
    baseline = KeywordBaseline()

    def ours(r: Report) -> Classification:
        return tocsin.classify(r.text, report_id=r.id, title=r.title)

    def naive(r: Report) -> Classification:
        return baseline.classify(r.text, title=r.title)

    out: dict[str, dict[str, Scores]] = {}
    for split in SPLITS:
        reports = load(split, data)
        out[split] = {"tocsin": score(reports, ours), "keywords": score(reports, naive)}
    return out


def render(results: dict[str, dict[str, Scores]], *, show_errors: bool = True) -> str:
    """The ``make eval`` table: headline figures, then per-indicator P/R/F1."""
    lines: list[str] = []
    for split, systems in results.items():
        s = systems["tocsin"]
        lines.append(
            f"{split}: {s.reports} reports, {s.reports - s.negatives} should alert, "
            f"{s.negatives} should stay silent"
        )
    cols = [(split, system) for split in results for system in ("tocsin", "keywords")]
    header = f"{'metric':<38}" + "".join(f"{sp + ' ' + sy:>17}" for sp, sy in cols)
    lines += ["", header, "-" * len(header)]
    labels = {
        "alert_precision": "alert precision (severity >= 2)",
        "alert_recall": "alert recall",
        "alert_f1": "alert F1",
        "negatives_silent": "negatives left silent",
        "indicator_micro_f1": "indicator micro-F1",
        "country_accuracy": "country accuracy (first country)",
        "casualty_accuracy": "casualty accuracy (per figure)",
        "severity_accuracy": "severity exactly right (0-3)",
    }
    summaries = {c: results[c[0]][c[1]].summary() for c in cols}
    for key, label in labels.items():
        lines.append(f"{label:<38}" + "".join(f"{summaries[c][key]:>17.2f}" for c in cols))
    lines += ["", f"{'indicator P/R/F1':<38}" + "".join(f"{sp + ' ' + sy:>17}" for sp, sy in cols)]
    lines.append("-" * len(header))
    for ind in INDICATOR_IDS:
        row = f"{ind:<38}"
        for sp, sy in cols:
            prf = results[sp][sy].indicators[ind]
            row += f"{prf.precision:>7.2f}/{prf.recall:.2f}/{prf.f1:.2f}"
        lines.append(row)
    if "heldout" in results:
        held = results["heldout"]["tocsin"].summary()
        verdicts = [
            f"{k} {held[k]:.3f} {'>=' if held[k] >= v else '<'} {v:.2f}" for k, v in TARGETS.items()
        ]
        lines += ["", "held-out targets: " + "; ".join(verdicts)]
    if show_errors:
        for split, systems in results.items():
            for err in systems["tocsin"].errors:
                lines.append(f"  {split} alert miss: {err}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    results = run()
    # Only dev errors are listed by default: reading held-out mistakes is how tuning leaks.
    text = render(results, show_errors=False)
    print(text)
    if "--errors" in args:
        for err in results["dev"]["tocsin"].errors:
            print(f"  dev alert miss: {err}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
