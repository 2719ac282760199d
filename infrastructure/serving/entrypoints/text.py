"""``bentoml serve infrastructure.serving.entrypoints.text:TextClassifier``.

``bentoml.service`` is applied here, not in the builder, because BentoML finds a service's
import path from the module that decorated it.
"""

from __future__ import annotations

import bentoml

from infrastructure.config.settings import TextServingSettings
from infrastructure.serving.text_service import build_text_service

_blueprint = build_text_service(TextServingSettings())
TextClassifier = _blueprint.attach_middleware(bentoml.service(**_blueprint.config)(_blueprint.cls))
