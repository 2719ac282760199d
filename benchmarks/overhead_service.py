"""``bentoml serve benchmarks.overhead_service:TextClassifier``: the production text service
built with a stand-in model (``benchmarks.overhead_models``), for ``make bench-overhead``;
with ``MLOPS_TEXT_SERVE_TOPOLOGY=split`` the stand-in sits in the model runner."""

from __future__ import annotations

import bentoml

from benchmarks.overhead_models import benchmark_loader
from infrastructure.config.settings import TextServingSettings
from infrastructure.serving.text_runner import build_text_runner, resolve_topology
from infrastructure.serving.text_service import build_text_service

_settings = TextServingSettings()
TextRunner = None
# The stand-in models need no GPU: the topology follows the setting, not the machine.
if resolve_topology(_settings, has_cuda=False) == "split":
    _runner = build_text_runner(_settings, benchmark_loader, has_cuda=False)
    TextRunner = bentoml.service(**_runner.config)(_runner.cls)
_blueprint = build_text_service(_settings, loader_factory=benchmark_loader, runner=TextRunner)
TextClassifier = _blueprint.attach(bentoml.service(**_blueprint.config)(_blueprint.cls))
