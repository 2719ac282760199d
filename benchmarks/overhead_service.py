"""``bentoml serve benchmarks.overhead_service:TextClassifier``: the production text service
built with a stand-in model (``benchmarks.overhead_models``), for ``make bench-overhead``."""

from __future__ import annotations

import bentoml

from benchmarks.overhead_models import benchmark_loader
from infrastructure.config.settings import TextServingSettings
from infrastructure.serving.text_service import build_text_service

_blueprint = build_text_service(TextServingSettings(), loader_factory=benchmark_loader)
TextClassifier = _blueprint.attach_middleware(bentoml.service(**_blueprint.config)(_blueprint.cls))
