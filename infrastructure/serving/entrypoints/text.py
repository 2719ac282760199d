"""``bentoml serve infrastructure.serving.entrypoints.text:TextClassifier``.

``bentoml.service`` is applied here, not in the builders, because BentoML finds a service's
import path from the module that decorated it. In the split topology the model runner is
decorated here too, and ``TextClassifier`` depends on it (``bentoml serve`` starts both).
"""

from __future__ import annotations

import bentoml

from infrastructure.config.settings import TextServingSettings
from infrastructure.serving.loaders import TransformersModelLoader
from infrastructure.serving.text_runner import (
    build_text_runner,
    cuda_available,
    resolve_topology,
)
from infrastructure.serving.text_service import build_text_service

_settings = TextServingSettings()
_cuda = cuda_available()
TextRunner = None
if resolve_topology(_settings, _cuda) == "split":
    _runner = build_text_runner(_settings, TransformersModelLoader, _cuda)
    TextRunner = bentoml.service(**_runner.config)(_runner.cls)
_blueprint = build_text_service(_settings, runner=TextRunner)
TextClassifier = _blueprint.attach(bentoml.service(**_blueprint.config)(_blueprint.cls))
