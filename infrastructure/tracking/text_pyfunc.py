"""MLflow pyfunc wrapper of a fine-tuned text classifier folder (what `mlops validate` loads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel  # type: ignore[attr-defined]

TEXT_COLUMN = "text"


class TextClassifierPyfunc(PythonModel):
    def __init__(self, max_length: int) -> None:
        self.max_length = max_length
        self._classifier: Any = None

    def load_context(self, context: Any) -> None:
        from infrastructure.ml.text.classifier import TransformersTextClassifier

        self._classifier = TransformersTextClassifier.load(
            Path(context.artifacts["model"]), self.max_length
        )

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.Series:
        texts = model_input[TEXT_COLUMN].astype(str).tolist()
        return pd.Series(self._classifier.predict(texts))
