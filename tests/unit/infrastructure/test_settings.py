from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from infrastructure.config.settings import (
    MlopsSettings,
    ServingSettings,
    TextServingSettings,
    mask_secrets,
)


def test_defaults_live_in_project_local_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key in ("MLOPS_HOME", "MLOPS_TRACKING_URI", "MLOPS_BENTOML_HOME", "MLOPS_LOG_LEVEL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)

    settings = MlopsSettings()

    assert settings.home == tmp_path.resolve() / ".mlops"
    assert settings.tracking_uri == f"sqlite:///{tmp_path.resolve() / '.mlops' / 'mlflow.db'}"
    assert settings.registry_uri == settings.tracking_uri
    assert settings.bentoml_home == tmp_path.resolve() / ".mlops" / "bentoml"
    assert settings.artifact_location == str(tmp_path.resolve() / ".mlops" / "mlartifacts")
    assert settings.log_level == "INFO"
    assert not (tmp_path / ".mlops").exists(), "building settings must create nothing"


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("MLOPS_TRACKING_URI", "http://mlflow.internal:5000")
    monkeypatch.setenv("MLOPS_BENTOML_HOME", str(tmp_path / "store"))
    monkeypatch.setenv("MLOPS_LOG_LEVEL", "debug")

    settings = MlopsSettings()

    assert settings.home == tmp_path / "state"
    assert settings.tracking_uri == "http://mlflow.internal:5000"
    assert settings.registry_uri == "http://mlflow.internal:5000"
    assert settings.bentoml_home == tmp_path / "store"
    assert settings.log_level == "DEBUG"
    assert settings.artifact_location == str(tmp_path / "state" / "mlartifacts")


def test_settings_are_frozen() -> None:
    settings = MlopsSettings()
    with pytest.raises(Exception, match="frozen"):
        settings.log_level = "ERROR"  # type: ignore[misc]


def test_invalid_log_level_is_rejected_with_field_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_LOG_LEVEL", "LOUD")
    with pytest.raises(ValueError, match="log_level"):
        MlopsSettings()


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("postgresql://mlflow:s3cret@db:5432/mlflow", "postgresql://mlflow:***@db:5432/mlflow"),
        ("https://user:tok@host/path", "https://user:***@host/path"),
        ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
    ],
)
def test_secrets_are_masked(uri: str, shown: str) -> None:
    assert mask_secrets(uri) == shown


def test_describe_masks_tracking_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_TRACKING_URI", "postgresql://u:hunter2@db/mlflow")
    described = MlopsSettings().describe()
    assert "hunter2" not in str(described)
    assert described["tracking_uri"] == "postgresql://u:***@db/mlflow"


def test_text_service_settings_have_their_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_SERVE_MODEL_NAME", "iris-classifier")
    monkeypatch.setenv("MLOPS_TEXT_SERVE_MODEL_NAME", "reviews")
    monkeypatch.setenv("MLOPS_TEXT_SERVE_CACHE", "true")
    monkeypatch.setenv("MLOPS_TEXT_SERVE_WARMUP_BATCH_SIZES", "[1, 16]")

    text = TextServingSettings()
    tabular = ServingSettings()

    assert (text.model_name, tabular.model_name) == ("reviews", "iris-classifier")
    assert text.cache is True and text.warmup_batch_sizes == (1, 16)
    assert text.batching is True and text.device == "auto" and text.gpus == 0


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("MLOPS_TEXT_SERVE_MAX_BATCH_SIZE", "1", "max_batch_size"),
        ("MLOPS_TEXT_SERVE_DEVICE", "tpu", "device"),
        ("MLOPS_TEXT_SERVE_WARMUP_BATCH_SIZES", "[0, 8]", "warmup_batch_sizes"),
        ("MLOPS_TEXT_SERVE_CACHE_TTL_S", "0", "cache_ttl_s"),
    ],
)
def test_invalid_text_service_settings_name_the_field(
    monkeypatch: pytest.MonkeyPatch, key: str, value: str, field: str
) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match=field):
        TextServingSettings()


def test_torch_compile_with_an_onnx_backend_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLOPS_TEXT_SERVE_TORCH_COMPILE", "default")
    monkeypatch.setenv("MLOPS_TEXT_SERVE_BACKEND", "onnx-int8")
    with pytest.raises(ValidationError, match="torch_compile: default compiles the torch backend"):
        TextServingSettings()
    monkeypatch.setenv("MLOPS_TEXT_SERVE_BACKEND", "torch")
    assert TextServingSettings().torch_compile == "default"
