"""The loaded versions a service holds, by variant; a swap is one reference replaced."""

from __future__ import annotations

import threading

from domain.serving.model import LoadedModel
from domain.serving.variants import CHAMPION, VariantName


class ModelPool:
    """Variant -> loaded model. Readers take a reference and keep it for a whole batch, so a
    swap never changes the version a batch in flight is scored by; the old version is freed
    once the last batch holding it ends."""

    def __init__(self) -> None:
        self._models: dict[VariantName, LoadedModel] = {}
        self._lock = threading.Lock()

    def get(self, variant: VariantName) -> LoadedModel | None:
        return self._models.get(variant)

    def champion(self) -> LoadedModel:
        model = self._models.get(CHAMPION)
        if model is None:
            raise LookupError("no champion is loaded")
        return model

    def swap(self, variant: VariantName, model: LoadedModel | None) -> LoadedModel | None:
        """Put ``model`` in place of the variant's current one (None removes it)."""
        with self._lock:
            old = self._models.get(variant)
            if model is None:
                self._models.pop(variant, None)
            else:
                self._models[variant] = model
            return old

    def snapshot(self) -> dict[VariantName, LoadedModel]:
        with self._lock:
            return dict(self._models)
