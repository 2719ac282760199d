"""Behavioural checks of a text classifier (CheckList-style): invariance and directional tests.

Invariance: changing case or dropping punctuation must not change the prediction.
Negation: each pair is a sentence and its negation; the prediction is expected to flip.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence

from pydantic import BaseModel, ConfigDict

Predict = Callable[[Sequence[str]], Sequence[str]]
_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}]")


class BehaviourCase(BaseModel):
    model_config = ConfigDict(frozen=True)

    test: str
    original: str
    changed: str
    original_prediction: str
    changed_prediction: str
    passed: bool


class BehaviourReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    invariance_pass_rate: float | None
    negation_flip_rate: float | None
    cases: list[BehaviourCase]

    def metrics(self) -> dict[str, float]:
        values = {
            "behaviour.invariance_pass_rate": self.invariance_pass_rate,
            "behaviour.negation_flip_rate": self.negation_flip_rate,
        }
        return {k: v for k, v in values.items() if v is not None}


def perturbations(text: str) -> dict[str, str]:
    return {
        "upper_case": text.upper(),
        "no_punctuation": " ".join(_PUNCTUATION.sub(" ", text).split()),
    }


def run_behaviour_checks(
    predict: Predict, invariance_texts: Sequence[str], negation_pairs: Sequence[Sequence[str]]
) -> BehaviourReport:
    cases: list[BehaviourCase] = []
    pairs: list[tuple[str, str, str]] = []
    for text in invariance_texts:
        pairs += [(name, text, changed) for name, changed in perturbations(text).items()]
    pairs += [("negation", pair[0], pair[1]) for pair in negation_pairs]
    if not pairs:
        return BehaviourReport(invariance_pass_rate=None, negation_flip_rate=None, cases=[])
    predictions = list(predict([p[1] for p in pairs] + [p[2] for p in pairs]))
    originals, changed = predictions[: len(pairs)], predictions[len(pairs) :]
    for (test, original, altered), before, after in zip(pairs, originals, changed, strict=True):
        passed = (before != after) if test == "negation" else (before == after)
        cases.append(
            BehaviourCase(
                test=test,
                original=original,
                changed=altered,
                original_prediction=before,
                changed_prediction=after,
                passed=passed,
            )
        )

    def rate(selected: list[BehaviourCase]) -> float | None:
        return sum(c.passed for c in selected) / len(selected) if selected else None

    return BehaviourReport(
        invariance_pass_rate=rate([c for c in cases if c.test != "negation"]),
        negation_flip_rate=rate([c for c in cases if c.test == "negation"]),
        cases=cases,
    )
