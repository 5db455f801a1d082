"""NegEx public test set through ``LoGSAMLib.nlp.assertion`` beside plain negspaCy ``en_clinical``, same run.

The file is chapmanbe/negex ``negex.python/Annotations-1-120.txt`` (2,376 sentence/concept pairs from
de-identified clinical reports; tab-separated: report number, concept, sentence, Affirmed/Negated/...).
It is not shipped with LoGSAM; give its path::

    python -m benchmarks.negex_bench /tmp/negex/Annotations-1-120.txt [--misses 20] [--json out.json]

Reported per system: F1 (and precision, recall) for "negated" over the pairs where the concept was found,
the number of pairs whose concept was not found in the sentence ("unmatched"; counted as not negated in
the F1), and the cost per pair. Plain negspaCy: a blank English pipeline with a sentencizer, the concept
as the only entity (case-insensitive phrase match of the raw text, as in negspaCy's own examples) and
negspaCy's ``en_clinical`` termset; a concept is negated when every mention is (as ``assertion()``).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

csv.field_size_limit(10_000_000)


@dataclass(frozen=True)
class Pair:
    report: str
    concept: str
    sentence: str
    negated: bool  # the annotation says "Negated"


def read_pairs(path: str | Path) -> list[Pair]:
    """Rows of the NegEx annotation file (tab-separated, double-quoted fields, one header line)."""
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quotechar='"'))
    pairs = []
    for row in rows[1:]:
        if len(row) < 4 or not row[1].strip():
            continue
        pairs.append(Pair(row[0].strip(), row[1], row[2], row[3].strip().lower() == "negated"))
    return pairs


@dataclass
class Score:
    name: str
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    unmatched: int = 0
    seconds: float = 0.0

    def add(self, gold: bool, predicted: bool) -> None:
        if gold and predicted:
            self.tp += 1
        elif predicted:
            self.fp += 1
        elif gold:
            self.fn += 1
        else:
            self.tn += 1

    def row(self, n: int) -> dict[str, Any]:
        precision = self.tp / max(1, self.tp + self.fp)
        recall = self.tp / max(1, self.tp + self.fn)
        f1 = 2 * precision * recall / max(1e-12, precision + recall)
        return {"stage": "nlp", "name": self.name, "pairs": n, "f1_negated": round(f1, 4),
                "precision": round(precision, 4), "recall": round(recall, 4), "unmatched": self.unmatched,
                "ms_per_pair": round(self.seconds / max(1, n) * 1000, 3), "tp": self.tp, "fp": self.fp,
                "fn": self.fn, "tn": self.tn}


def _logsam(pairs: list[Pair], misses: list[str]) -> Score:
    from LoGSAMLib.nlp import ABSENT, NEGATED, assertion

    score = Score("LoGSAM assertion()")
    assertion("warm-up", "x")
    start = time.perf_counter()
    for pair in pairs:
        value = assertion(pair.sentence, pair.concept)
        score.unmatched += value == ABSENT
        predicted = value == NEGATED
        score.add(pair.negated, predicted)
        if predicted != pair.negated:
            misses.append(f"  gold {'negated' if pair.negated else 'not negated'}, got {value}: "
                          f"{pair.concept!r} in {pair.sentence[-160:]!r}")
    score.seconds = time.perf_counter() - start
    return score


def _negspacy(pairs: list[Pair]) -> Score:
    import spacy
    from negspacy.negation import Negex
    from negspacy.termsets import termset
    from spacy.matcher import PhraseMatcher
    from spacy.tokens import Span
    from spacy.util import filter_spans

    nlp = spacy.blank("en")
    sentencizer = nlp.add_pipe("sentencizer")
    negex = Negex(nlp, "negex", termset("en_clinical").get_patterns(), None, "negex", None, None)
    score = Score("negspaCy en_clinical")
    start = time.perf_counter()
    for pair in pairs:
        doc = sentencizer(nlp.make_doc(pair.sentence))
        matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
        matcher.add("C", [nlp.make_doc(pair.concept.lower())])
        doc.ents = filter_spans([Span(doc, s, e, label="C") for _, s, e in matcher(doc)])
        if not doc.ents:
            score.unmatched += 1
            score.add(pair.negated, False)
            continue
        doc = negex(doc)
        score.add(pair.negated, all(ent._.negex for ent in doc.ents))
    score.seconds = time.perf_counter() - start
    return score


def run(path: str | Path, show_misses: int = 0) -> list[dict[str, Any]]:
    pairs = read_pairs(path)
    misses: list[str] = []
    rows = [_logsam(pairs, misses).row(len(pairs)), _negspacy(pairs).row(len(pairs))]
    if show_misses:
        print(f"LoGSAM misses ({len(misses)}), first {show_misses}:", file=sys.stderr)
        print("\n".join(misses[:show_misses]), file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path, help="negex.python/Annotations-1-120.txt from chapmanbe/negex")
    parser.add_argument("--misses", type=int, default=0, help="print the first N LoGSAM misses")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    if not args.path.is_file():
        print(f"{args.path}: no such file; get Annotations-1-120.txt from github.com/chapmanbe/negex "
              "(negex.python/).", file=sys.stderr)
        return 2
    rows = run(args.path, args.misses)
    for row in rows:
        print(f"{row['name']:<22} pairs {row['pairs']}  F1(negated) {row['f1_negated']:.3f}  "
              f"P {row['precision']:.3f}  R {row['recall']:.3f}  unmatched {row['unmatched']}  "
              f"{row['ms_per_pair']:.2f} ms/pair")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
