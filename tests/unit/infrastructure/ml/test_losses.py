from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from infrastructure.ml.text.losses import balanced_class_weights, classification_loss, focal_loss

LOGITS = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
TARGETS = torch.tensor([0, 0])


def _p_true() -> list[float]:
    # softmax([2, 0])[0] = e^2 / (e^2 + 1); softmax([0, 1])[0] = 1 / (1 + e)
    return [math.exp(2) / (math.exp(2) + 1), 1 / (1 + math.e)]


def test_focal_loss_matches_hand_computed_values() -> None:
    gamma = 2.0
    expected = sum(-((1 - p) ** gamma) * math.log(p) for p in _p_true()) / 2
    assert focal_loss(LOGITS, TARGETS, gamma).item() == pytest.approx(expected, rel=1e-6)


def test_focal_loss_with_alpha_weights_each_example_by_its_class() -> None:
    alpha = torch.tensor([0.25, 0.75])
    expected = sum(-0.25 * (1 - p) ** 2 * math.log(p) for p in _p_true()) / 2
    assert focal_loss(LOGITS, TARGETS, 2.0, alpha).item() == pytest.approx(expected, rel=1e-6)


def test_gamma_zero_is_cross_entropy_and_kinds_dispatch() -> None:
    ce = F.cross_entropy(LOGITS, TARGETS).item()
    assert focal_loss(LOGITS, TARGETS, 0.0).item() == pytest.approx(ce, rel=1e-6)
    assert classification_loss(LOGITS, TARGETS, "ce").item() == pytest.approx(ce, rel=1e-6)
    weights = balanced_class_weights([30, 10])
    assert weights.tolist() == pytest.approx([40 / 60, 40 / 20])
    weighted = classification_loss(LOGITS, TARGETS, "weighted_ce", alpha=weights).item()
    assert weighted == pytest.approx(ce, rel=1e-6), "one class present: weights cancel out"
