"""``bentoml serve infrastructure.serving.entrypoints.tabular:TabularClassifier``.

``bentoml.service`` is applied here, not in the builder, because BentoML finds a service's
import path from the module that decorated it.
"""

from __future__ import annotations

import bentoml

from infrastructure.config.settings import ServingSettings
from infrastructure.serving.tabular_service import build_tabular_service

_blueprint = build_tabular_service(ServingSettings())
TabularClassifier = _blueprint.attach(bentoml.service(**_blueprint.config)(_blueprint.cls))
