from __future__ import annotations

from dataclasses import dataclass

import pytest

from infrastructure.config.settings import TextServingSettings
from infrastructure.ml.text.classifier import CPU_FORWARD_TOKENS, plan_forward_passes
from infrastructure.serving.loaders import ForwardPlan, forward_plan


def test_passes_group_texts_of_similar_length_shortest_first() -> None:
    lengths = [30, 5, 12, 6, 29]
    assert plan_forward_passes(lengths, max_texts=2) == [[1, 3], [2, 4], [0]]


def test_a_token_budget_bounds_every_pass_once_padded() -> None:
    lengths = [4, 4, 4, 4, 10, 10, 40]
    passes = plan_forward_passes(lengths, max_texts=64, max_tokens=20)
    assert passes == [[0, 1, 2, 3], [4, 5], [6]], "a text over the budget gets a pass alone"
    for chosen in passes[:-1]:
        assert len(chosen) * max(lengths[i] for i in chosen) <= 20
    assert sorted(i for chosen in passes for i in chosen) == list(range(len(lengths)))


def test_no_budget_cuts_only_by_count_and_empty_input_has_no_pass() -> None:
    assert plan_forward_passes([7] * 5, max_texts=64) == [[0, 1, 2, 3, 4]]
    assert plan_forward_passes([], max_texts=8) == []
    with pytest.raises(ValueError, match="max_texts"):
        plan_forward_passes([1], max_texts=0)


@dataclass(frozen=True)
class _Budget:
    """What ``forward_plan`` reads of a classifier: its own token budget per pass."""

    forward_tokens: int


def test_forward_plan_takes_the_classifier_budget_unless_the_setting_names_one() -> None:
    settings = TextServingSettings(max_batch_size=32, max_instances=16)
    assert forward_plan(settings, _Budget(CPU_FORWARD_TOKENS)) == ForwardPlan(32, 256)
    assert forward_plan(settings, _Budget(0)) == ForwardPlan(32, 0), "a GPU: whole batches"
    tuned = TextServingSettings(forward_max_tokens=512)
    assert forward_plan(tuned, _Budget(0)) == ForwardPlan(64, 512)
