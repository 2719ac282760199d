"""One loader per model kind: a stored version (BentoML tag) in, a :class:`LoadedModel` out.

A new kind of model costs one scorer and one loader here; the prediction use case, pool,
reloader, monitors and service shape are shared.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar, overload

import bentoml
import numpy as np
import pandas as pd

from application.inference.prediction_cache import PredictionCache
from domain.data.schema import FeatureKind, FeatureSchema
from domain.models.contract import ServingContract
from domain.monitoring.drift_inputs import tabular_drift_values, text_drift_values
from domain.ports import ModelSource
from domain.serving.model import DriftValues, LoadedModel
from infrastructure.config.settings import ServingSettings, TextServingSettings
from infrastructure.store.bento_model_store import (
    TEST_SPLIT_FILE,
    VERSION_LABEL,
    BentoModelStore,
    stored_contract,
)
from shared.errors import BackendRefusedError, ModelNotFoundError

logger = logging.getLogger(__name__)

Row = tuple[Any, ...]

# Warm-up batches are padded to the model's max length: the most expensive shape it serves.
WARMUP_SENTENCE = "a warm , funny and thoroughly engaging film that never loses its way . "
SMOKE_TEXTS = ["a fine film .", "dull and lifeless ."]


# `promote` and training move a label by rewriting the stored model's model.yaml in place
# (BentoML has no atomic relabel), so another process that reads the store at that moment can
# see a half-written file; seen as a failed reload in a two-worker run. Such reads are retried
# briefly before a failure is reported.
STORE_READ_ATTEMPTS = 4
STORE_READ_PAUSE_S = 0.25

T = TypeVar("T")


def read_store(read: Callable[[], T]) -> T:
    for attempt in range(STORE_READ_ATTEMPTS):
        try:
            return read()
        except ModelNotFoundError:
            raise
        except Exception:
            if attempt == STORE_READ_ATTEMPTS - 1:
                raise
            time.sleep(STORE_READ_PAUSE_S)
    raise AssertionError("unreachable")  # pragma: no cover


def stored_model(tag: str) -> tuple[Any, ServingContract]:
    """A stored version and its serving contract (reads retried while labels move)."""

    def read() -> tuple[Any, ServingContract]:
        try:
            stored = bentoml.models.get(tag)
        except bentoml.exceptions.NotFound:
            raise ModelNotFoundError(f"model {tag!r} is not in the BentoML store") from None
        return stored, stored_contract(stored)

    return read_store(read)


def loaded_model(stored: Any, contract: ServingContract, scorer: Any) -> LoadedModel:
    """A stored version with the scorer a loader built for it."""
    labels = dict(stored.info.labels)
    return LoadedModel(
        tag=str(stored.tag),
        name=labels.get("registered_model", stored.tag.name),
        version=labels.get(VERSION_LABEL, stored.tag.version or ""),
        contract=contract,
        scorer=scorer,
    )


def model_frame(
    columns: Mapping[Any, Any], names: Sequence[str], numeric: frozenset[str]
) -> pd.DataFrame:
    """Columns as training saw them: numbers as float64 and missing values as NaN.

    A ``null`` category must become NaN, not None: the Pipeline's imputer for object
    columns matches missing values by ``x != x``, which None does not satisfy.
    """
    frame = pd.DataFrame({name: columns[name] for name in names})
    for name in names:
        column = frame[name]
        if name in numeric:
            frame[name] = column.astype("float64")
        else:
            frame[name] = column.astype(object).where(column.notna(), np.nan)
    return frame


class FrameRows(Sequence[Row]):
    """Validated tabular rows kept as the columns of a file's chunk (a :func:`model_frame`).

    :class:`TabularScorer` hands the frame to the model as it is. A row (a tuple, None
    where a value is missing, as a request's row validates) is built only where one is
    asked for: the monitors' log, a row's unknown categories. A tuple per row and a frame
    built from them again took 2.5x the model's own time on a tabular file (0.63 s against
    0.25 s for 500,000 rows, measured).
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def __len__(self) -> int:
        return len(self.frame)

    @overload
    def __getitem__(self, index: int) -> Row: ...

    @overload
    def __getitem__(self, index: slice) -> FrameRows: ...

    def __getitem__(self, index: int | slice) -> Row | FrameRows:
        if isinstance(index, slice):
            return FrameRows(self.frame.iloc[index].reset_index(drop=True))
        return tuple(_python_value(v) for v in self.frame.iloc[index].tolist())

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence of the same rows (a list of tuples included)."""
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # mutable frame: no hash, like a list

    def __iter__(self) -> Any:
        columns = [
            [_python_value(v) for v in self.frame[name].tolist()] for name in self.frame.columns
        ]
        return iter(zip(*columns, strict=True))


def _python_value(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and value != value) else value


class TabularScorer:
    """A scikit-learn Pipeline over rows in feature-schema order; missing values as NaN."""

    def __init__(self, model: Any, schema: FeatureSchema, contract: ServingContract) -> None:
        self._model = model
        self._schema = schema
        self._contract = contract
        self._names = schema.names
        self._numeric = frozenset(s.name for s in schema.features if s.kind is FeatureKind.NUMERIC)
        self._known = {
            s.name: frozenset(s.categories)
            for s in schema.features
            if s.kind is FeatureKind.CATEGORICAL
        }
        self._classes = tuple(str(c) for c in model.classes_)

    @property
    def classes(self) -> tuple[str, ...]:
        return self._classes

    def frame(self, rows: Sequence[Row]) -> pd.DataFrame:
        """Rows as training saw them (:func:`model_frame`); :class:`FrameRows` already are."""
        if isinstance(rows, FrameRows):
            return rows.frame
        records = pd.DataFrame.from_records(list(rows), columns=self._names)
        return model_frame(dict(records.items()), self._names, self._numeric)

    def predict_proba(self, inputs: Sequence[Row]) -> np.ndarray:
        frame = self.frame(inputs)
        if hasattr(self._model, "predict_proba"):
            probabilities: np.ndarray = np.asarray(self._model.predict_proba(frame), dtype=float)
            return probabilities
        # Estimators without probabilities: the predicted class gets all the mass.
        predicted = np.asarray(self._model.predict(frame)).astype(str)
        one_hot: np.ndarray = (predicted[:, None] == np.array(self._classes)[None, :]).astype(float)
        return one_hot

    def drift_values(self, inputs: Sequence[Row]) -> DriftValues:
        return tabular_drift_values(self._schema, inputs)

    @property
    def has_categories(self) -> bool:
        return bool(self._known)

    def unknown_categories_per_row(self, rows: Sequence[Row]) -> list[dict[str, str]]:
        """:meth:`unknown_categories` of each row, a column at a time."""
        frame = self.frame(rows)
        found: list[dict[str, str]] = [{} for _ in range(len(frame))]
        for name, known in self._known.items():
            column = frame[name]
            unknown = column.notna().to_numpy() & ~column.isin(list(known)).to_numpy()
            for index in np.flatnonzero(unknown).tolist():
                found[index][name] = str(column.iat[index])
        return found

    def unknown_categories(self, row: Row) -> dict[str, str]:
        return {
            name: value
            for name, value in zip(self._names, row, strict=True)
            if name in self._known and value is not None and value not in self._known[name]
        }

    def smoke_inputs(self) -> list[Any]:
        """The training profile's middle value per feature, and a row of gaps."""
        profile = self._contract.reference_profile
        typical: list[Any] = []
        for spec in self._schema.features:
            if spec.kind is FeatureKind.NUMERIC:
                typical.append(float(np.median(profile.numeric[spec.name].sample)))
            else:
                frequencies = profile.categorical[spec.name].frequencies
                typical.append(max(frequencies, key=frequencies.__getitem__, default=None))
        return [tuple(typical), tuple(None for _ in typical)]


class SklearnModelLoader:
    """Tabular models from the BentoML store (``bentoml.sklearn``)."""

    def load(self, tag: str) -> LoadedModel:
        stored, contract = stored_model(tag)
        if contract.feature_schema is None:
            raise ModelNotFoundError(f"{tag} is a {contract.task} model, not a tabular one")
        model = bentoml.sklearn.load_model(stored)
        return loaded_model(
            stored, contract, TabularScorer(model, contract.feature_schema, contract)
        )


@dataclass(frozen=True)
class ForwardPlan:
    """How a batch is cut into forward passes: texts per pass, padded tokens per pass (0: any)."""

    max_texts: int
    max_tokens: int


def forward_plan(settings: TextServingSettings, classifier: Any) -> ForwardPlan:
    """The setting's token budget, else the classifier's own (``forward_tokens``): small
    length-sorted passes on CPU, whole batches on GPU.

    On CPU, cost grows with the padded tokens a pass computes, and short passes of texts of
    similar length pad least; a GPU runs a large pass in about the time of a small one.
    """
    tokens = settings.forward_max_tokens or int(classifier.forward_tokens)
    return ForwardPlan(max(settings.max_batch_size, settings.max_instances), tokens)


@dataclass
class WarmupRecord:
    batch_ms: dict[int, float] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(frozen=True)
class BackendRecord:
    """Which runtime scores a text version, and what its accuracy guard measured."""

    name: str = "torch"
    accuracy: dict[str, float] = field(default_factory=dict)
    # Forward passes scored at once (ONNX Runtime's ``ONNX_SIDE_BY_SIDE``), one thread each.
    passes_side_by_side: int = 1
    # ``torch.compile`` mode of the torch backend (``TORCH_COMPILE``), "off" when eager.
    compiled: str = "off"


class TextScorer:
    """A fine-tuned transformers classifier over normalized texts, with an optional cache."""

    def __init__(
        self,
        classifier: Any,
        version: str,
        forward: ForwardPlan,
        cache: PredictionCache[np.ndarray] | None,
        on_cache: Callable[[int, int], None] | None = None,
    ) -> None:
        self.classifier = classifier
        self._classes = tuple(classifier.classes)
        self._version = version
        self.forward = forward
        self._cache = cache
        self._on_cache = on_cache
        self.warmup = WarmupRecord()
        self.backend = BackendRecord()

    @classmethod
    def with_cache(
        cls,
        classifier: Any,
        version: str,
        forward: ForwardPlan,
        settings: TextServingSettings,
        on_cache: Callable[[str, int, int], None] | None,
    ) -> TextScorer:
        """The scorer with the cache the settings ask for, reporting lookups by version."""
        cache = (
            PredictionCache[np.ndarray](settings.cache_size, settings.cache_ttl_s)
            if settings.cache
            else None
        )
        return cls(
            classifier,
            version,
            forward,
            cache,
            (lambda hits, misses: on_cache(version, hits, misses)) if on_cache else None,
        )

    @property
    def classes(self) -> tuple[str, ...]:
        return self._classes

    @property
    def device(self) -> str:
        return str(self.classifier.device)

    def _score(self, texts: Sequence[str]) -> np.ndarray:
        scores: np.ndarray = self.classifier.predict_proba(
            list(texts), batch_size=self.forward.max_texts, max_tokens=self.forward.max_tokens
        )
        return scores

    def predict_proba(self, inputs: Sequence[str]) -> np.ndarray:
        texts = list(inputs)
        if self._cache is None:
            return self._score(texts)
        keys = [(self._version, text) for text in texts]
        lookup = self._cache.lookup(keys)
        scores = np.empty((len(texts), len(self._classes)))
        for position, row in lookup.hits.items():
            scores[position] = row
        if lookup.misses:
            computed = self._score([texts[i] for i in lookup.misses])
            scores[lookup.misses] = computed
            # Copies: a view would keep the whole batch's array alive in the cache.
            self._cache.store([(keys[i], computed[j].copy()) for j, i in enumerate(lookup.misses)])
        if self._on_cache is not None:
            self._on_cache(len(lookup.hits), len(lookup.misses))
        return scores

    def drift_values(self, inputs: Sequence[str]) -> DriftValues:
        return text_drift_values(inputs)

    def smoke_inputs(self) -> list[Any]:
        return list(SMOKE_TEXTS)

    def warm(self, batch_sizes: Sequence[int], rounds: int, max_length: int) -> None:
        """Runs every batch size before the version takes traffic (kernels, allocator)."""
        text = (WARMUP_SENTENCE * (max_length // 8 + 1)).strip()
        started = time.perf_counter()
        for size in sorted(set(batch_sizes)):
            for _ in range(rounds):
                begun = time.perf_counter()
                self._score([text] * size)
            # The last round is the steady-state cost this batch size will have.
            self.warmup.batch_ms[size] = round((time.perf_counter() - begun) * 1000.0, 2)
        self.warmup.seconds = round(time.perf_counter() - started, 3)


def check_accuracy_guard(
    tag: str, option: str, fp32: float, reduced: float, max_drop: float, setting: str
) -> None:
    """Refuses a reduced-precision option that lost more than ``max_drop`` accuracy."""
    if fp32 - reduced > max_drop:
        raise BackendRefusedError(
            f"{tag}: {option} accuracy {reduced:.4f} on the stored test split is "
            f"{(fp32 - reduced) * 100:.2f} points below fp32 ({fp32:.4f}), over the "
            f"{max_drop * 100:.2f}-point limit ({setting}); serve it in fp32"
        )


def held_out_split(tag: str, folder: Path, option: str) -> tuple[list[str], list[str]]:
    from infrastructure.ml.text.held_out import stored_test_split

    split = stored_test_split(folder)
    if split is None:
        raise BackendRefusedError(
            f"{tag}: {option} needs the held-out split registered with the model "
            f"({TEST_SPLIT_FILE}), and this version has none; retrain it, or serve it in fp32"
        )
    return split


class TransformersModelLoader:
    """Text models from the BentoML store, on CUDA when torch sees it, warmed before use."""

    def __init__(
        self,
        settings: TextServingSettings,
        on_cache: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self._settings = settings
        self._on_cache = on_cache

    def load(self, tag: str) -> LoadedModel:
        settings = self._settings
        stored, contract = stored_model(tag)
        if contract.max_length is None:
            raise ModelNotFoundError(f"{tag} is a {contract.task} model, not a text one")
        compiling = settings.torch_compile != "off"
        classifier, backend = self._classifier(tag, Path(stored.path), contract.max_length)
        if compiling:
            classifier, backend = self._compiled(tag, classifier, backend)
        if tuple(classifier.classes) != contract.classes:
            raise ValueError(
                f"{tag}: model labels {classifier.classes} differ from its contract's classes "
                f"{list(contract.classes)}"
            )
        version = str(stored.info.labels.get(VERSION_LABEL, stored.tag.version or ""))
        scorer = TextScorer.with_cache(
            classifier,
            version,
            forward_plan(settings, classifier),
            settings,
            self._on_cache,
        )
        scorer.backend = backend
        largest = max(settings.max_batch_size, settings.max_instances)
        sizes = [min(size, largest) for size in settings.warmup_batch_sizes]
        if compiling:
            sizes.append(1)  # a pass of one text compiles apart (see ``compiled``)
        try:
            scorer.warm(sizes, settings.warmup_rounds, contract.max_length)
        except Exception as error:
            if not compiling:
                raise
            # torch.compile works on the first call, so its failures (no C compiler, an
            # unsupported operator) surface here, as a load refused by the setting's name.
            reason = (str(error).strip().splitlines() or [""])[0]  # torch adds hints below
            raise BackendRefusedError(
                f"{tag}: TORCH_COMPILE={settings.torch_compile} failed in the warm-up "
                f"({type(error).__name__}: {reason}); set it to off to serve eagerly"
            ) from error
        logger.info("%s warmed in %.2fs: %s", tag, scorer.warmup.seconds, scorer.warmup.batch_ms)
        return loaded_model(stored, contract, scorer)

    def _compiled(
        self, tag: str, classifier: Any, backend: BackendRecord
    ) -> tuple[Any, BackendRecord]:
        mode = self._settings.torch_compile
        try:
            compiled = classifier.compiled(mode)
        except ValueError as error:  # a mode this device cannot run
            raise BackendRefusedError(
                f"{tag}: TORCH_COMPILE={error}; use TORCH_COMPILE=default"
            ) from error
        return compiled, replace(backend, compiled=mode)

    def _classifier(self, tag: str, folder: Path, max_length: int) -> tuple[Any, BackendRecord]:
        settings = self._settings
        from infrastructure.ml.text.held_out import accuracy

        if settings.backend == "torch":
            from infrastructure.ml.text.classifier import TransformersTextClassifier

            loaded = TransformersTextClassifier.load(folder, max_length, device=settings.device)
            precision = settings.precision
            if precision == "fp32":
                return loaded, BackendRecord("torch")
            option = f"PRECISION={precision}"
            if not loaded.device.startswith("cuda"):
                raise BackendRefusedError(
                    f"{tag}: {option} applies to CUDA, and this worker runs on "
                    f"{loaded.device}; use fp32 (or BACKEND=onnx-int8 on CPU)"
                )
            texts, labels = held_out_split(tag, folder, option)
            reduced = loaded.with_precision(precision)
            before, after = accuracy(loaded, texts, labels), accuracy(reduced, texts, labels)
            check_accuracy_guard(
                tag,
                precision,
                before,
                after,
                settings.precision_max_accuracy_drop,
                "PRECISION_MAX_ACCURACY_DROP",
            )
            figures = {"fp32": round(before, 4), precision: round(after, 4), "examples": len(texts)}
            return reduced, BackendRecord(f"torch-{precision}", figures)
        from infrastructure.ml.text import onnx_backend

        exported = onnx_backend.export_onnx(folder)
        fp32 = onnx_backend.OnnxTextClassifier.load(
            folder, exported, max_length, settings.torch_threads, settings.onnx_side_by_side
        )
        if settings.backend == "onnx":
            return fp32, BackendRecord("onnx", passes_side_by_side=fp32.side_by_side)
        texts, labels = held_out_split(tag, folder, "backend onnx-int8")
        int8 = onnx_backend.OnnxTextClassifier.load(
            folder,
            onnx_backend.quantize_int8(folder),
            max_length,
            settings.torch_threads,
            settings.onnx_side_by_side,
        )
        before, after = accuracy(fp32, texts, labels), accuracy(int8, texts, labels)
        figures = {"fp32": round(before, 4), "int8": round(after, 4), "examples": len(texts)}
        check_accuracy_guard(
            tag, "int8", before, after, settings.int8_max_accuracy_drop, "INT8_MAX_ACCURACY_DROP"
        )
        logger.info("%s: int8 passes its guard: %s", tag, figures)
        return int8, BackendRecord("onnx-int8", figures, int8.side_by_side)


class BentoStoreModelSource:
    """Aliases as the BentoML store's labels show them (promotion mirrors the registry there).

    An exact ``model_tag`` in the settings pins the champion to that tag.
    """

    def __init__(self, settings: ServingSettings) -> None:
        self._settings = settings
        self._store = BentoModelStore()

    def tag_for_alias(self, name: str, alias: str) -> str | None:
        if self._settings.model_tag and alias == self._settings.model_alias:
            return self._settings.model_tag
        return read_store(lambda: self._store.tag_for_alias(name, alias))


def model_source(settings: ServingSettings) -> ModelSource:
    """Where the service follows its aliases: the local store, or MLflow (pulling versions)."""
    if settings.model_source == "mlflow":
        from infrastructure.config.settings import MlopsSettings
        from infrastructure.tracking.mlflow_model_source import MlflowPullModelSource

        mlops = MlopsSettings()
        pulling = MlflowPullModelSource(mlops.tracking_uri, mlops.registry_uri, BentoModelStore())
        if not settings.model_tag:
            return pulling
        return PinnedChampion(settings, pulling)
    return BentoStoreModelSource(settings)


class PinnedChampion:
    """An exact ``model_tag`` pins the champion; the other aliases follow ``source``."""

    def __init__(self, settings: ServingSettings, source: ModelSource) -> None:
        self._settings = settings
        self._source = source

    def tag_for_alias(self, name: str, alias: str) -> str | None:
        if alias == self._settings.model_alias:
            return self._settings.model_tag
        return self._source.tag_for_alias(name, alias)
