from __future__ import annotations

import pytest
from typer.testing import CliRunner

from infrastructure.cli import app

runner = CliRunner()


def _command_names() -> list[str]:
    import typer.main

    group = typer.main.get_command(app)
    return sorted(group.commands)  # type: ignore[attr-defined]


def test_root_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "info" in result.output


@pytest.mark.parametrize("command", _command_names())
def test_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_info_prints_versions_device_and_masked_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_TRACKING_URI", "postgresql://u:pw-123@db/mlflow")
    result = runner.invoke(app, ["info"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "bentoml" in result.output and "mlflow" in result.output
    assert "Device:" in result.output
    assert "cpu" in result.output or "cuda" in result.output or "mps" in result.output
    assert "pw-123" not in result.output
    assert "postgresql://u:***@db/mlflow" in result.output


def test_canary_names_a_bad_config_field_and_an_unreachable_service(tmp_path: object) -> None:
    from pathlib import Path

    config = Path(str(tmp_path)) / "canary.yaml"
    config.write_text("step_weights: [50, 20]\n")
    bad = runner.invoke(app, ["canary", "m", "--config", str(config)], terminal_width=200)
    assert bad.exit_code == 2 and "step_weights" in bad.output

    down = runner.invoke(
        app, ["canary", "m", "--url", "http://127.0.0.1:9", "--interval", "0.01"],
        terminal_width=200,
    )  # fmt: skip
    assert down.exit_code == 2 and "127.0.0.1:9" in down.output
    assert "Traceback" not in down.output
