"""Classification losses for fine-tuning: cross-entropy, class-weighted CE and focal loss."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F  # noqa: N812


def balanced_class_weights(counts: Sequence[int]) -> torch.Tensor:
    """n_samples / (n_classes * count) per class, as scikit-learn's "balanced" weights."""
    tensor = torch.tensor(counts, dtype=torch.float32).clamp(min=1.0)
    return tensor.sum() / (len(counts) * tensor)


def focal_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    gamma: float = 2.0,
    alpha: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean of -alpha_t * (1 - p_t)^gamma * log(p_t) (Lin et al., 2017).

    gamma = 0 and no alpha is plain cross-entropy; larger gamma down-weights examples the
    model already gets right.
    """
    log_probs = F.log_softmax(logits.float(), dim=-1)
    log_p_true = log_probs.gather(1, targets.unsqueeze(1)).squeeze(1)
    modulating = (1.0 - log_p_true.exp()).pow(gamma)
    losses = -modulating * log_p_true
    if alpha is not None:
        losses = losses * alpha.to(losses.device)[targets]
    return losses.mean()


def classification_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    kind: str,
    gamma: float = 2.0,
    alpha: torch.Tensor | None = None,
) -> torch.Tensor:
    if kind == "focal":
        return focal_loss(logits, targets, gamma, alpha)
    if kind == "weighted_ce":
        return F.cross_entropy(logits.float(), targets, weight=alpha)
    return F.cross_entropy(logits.float(), targets)
