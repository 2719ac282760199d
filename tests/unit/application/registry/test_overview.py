from __future__ import annotations

from application.registry.overview import registry_overview
from domain.models.version import RunSummary
from shared.errors import ModelNotFoundError
from tests.fakes.registry import FakeClassifier, FakeModelRegistry


class FakeRunHistory:
    def __init__(self, runs: list[RunSummary], fail: bool = False) -> None:
        self.runs = runs
        self.fail = fail
        self.asked: list[tuple[str, int]] = []

    def recent_runs(self, name: str, limit: int) -> list[RunSummary]:
        self.asked.append((name, limit))
        if self.fail:
            raise ModelNotFoundError("tracking server unreachable")
        return self.runs[:limit]


RUNS = [RunSummary(run_id=f"r{i}", name=f"run {i}", status="FINISHED") for i in range(3)]


def test_overview_lists_versions_and_the_newest_runs() -> None:
    registry = FakeModelRegistry()
    registry.add("m", FakeClassifier("a"), ["a", "b"], 0.5)
    history = FakeRunHistory(RUNS)
    overview = registry_overview(registry, history, "m", run_limit=2)
    assert [v.version for v in overview.versions] == ["1"]
    assert [r.run_id for r in overview.runs] == ["r0", "r1"]
    assert overview.error is None and history.asked == [("m", 2)]


def test_a_model_without_versions_asks_for_no_runs() -> None:
    history = FakeRunHistory(RUNS)
    overview = registry_overview(FakeModelRegistry(), history, "unknown", run_limit=5)
    assert overview.versions == [] and overview.runs == [] and history.asked == []


def test_an_unreadable_registry_is_said_not_raised() -> None:
    registry = FakeModelRegistry()
    registry.add("m", FakeClassifier("a"), ["a", "b"], 0.5)
    overview = registry_overview(registry, FakeRunHistory(RUNS, fail=True), "m", run_limit=5)
    assert overview.versions == [] and overview.error == "tracking server unreachable"
