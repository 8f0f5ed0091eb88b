"""The monthly job's control flow, with every task stubbed: who runs when drift says what."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from demand_forecasting.platform.task_values import current_task_values
from demand_forecasting.runner.entry_points import EntryPoint
from demand_forecasting.runner.executor import run_job
from demand_forecasting.runner.results import JobResultState, JobRunResult, TaskStatus

ROOT = Path(__file__).resolve().parents[2]
RETRAIN = ("train", "validate_models", "deploy")


@pytest.fixture(autouse=True)
def own_state(state_dir: Path) -> Path:
    """Run slots (lock files) in the test's own state folder, never the repository's .local/:
    a real run there must neither see the tests' locks nor make them skip."""
    return state_dir


def stubs(segments: list[str], failing: str | None = None) -> tuple[object, list[list[str]]]:
    """A resolver whose tasks do nothing but check_drift's task value; calls recorded."""
    calls: list[list[str]] = []

    def resolver(package: str, entry_point: str) -> EntryPoint:
        def task() -> None:
            calls.append(list(sys.argv))
            if entry_point == "df-check-drift":
                values = current_task_values(on_databricks=False)
                values.set("retrain_count", len(segments))
            if entry_point == failing:
                raise RuntimeError(f"{entry_point} failed")

        return task

    return resolver, calls


def run(
    tmp_path: Path, segments: list[str], failing: str | None = None
) -> tuple[JobRunResult, list[list[str]]]:
    resolver, calls = stubs(segments, failing)
    result = run_job(
        ROOT,
        "monthly",
        target="dev",
        resolver=resolver,  # type: ignore[arg-type]
        runs_dir=tmp_path,
        write_record=False,
    )
    return result, calls


def status(result: JobRunResult) -> dict[str, TaskStatus]:
    return {t.task_key: t.status for t in result.tasks}


def test_a_month_without_drift_skips_training_and_still_scores(
    tmp_path: Path, own_state: Path
) -> None:
    result, _ = run(tmp_path, [])
    statuses = status(result)
    assert result.state is JobResultState.SUCCESS
    assert (own_state / "runs" / "locks").is_dir()
    assert all(statuses[key] is TaskStatus.EXCLUDED for key in RETRAIN)
    assert statuses["score"] is TaskStatus.SUCCESS
    assert statuses["monitor"] is TaskStatus.SUCCESS


def test_drifted_segments_are_the_only_ones_trained(tmp_path: Path) -> None:
    result, calls = run(tmp_path, ["a", "b"])
    statuses = status(result)
    assert all(statuses[key] is TaskStatus.SUCCESS for key in (*RETRAIN, "score", "monitor"))
    # train reads the segments check_drift handed over in this job run (not a parameter:
    # an estate's list would exceed Databricks' 10,000 bytes of parameters).
    train = next(argv for argv in calls if argv[0] == "df-train")
    assert train[train.index("--segments") + 1] == "from-check-drift"
    assert train[train.index("--job-run-id") + 1] == str(result.run_id)
    order = [argv[0] for argv in calls]
    assert order.index("df-deploy") < order.index("df-score") < order.index("df-monitor")


@pytest.mark.parametrize("failing", ["df-validate-models", "df-deploy"])
def test_a_failed_promotion_scores_nothing_and_fails_the_job(tmp_path: Path, failing: str) -> None:
    result, _ = run(tmp_path, ["a"], failing)
    statuses = status(result)
    assert statuses["score"] is TaskStatus.UPSTREAM_FAILED
    assert result.state is JobResultState.FAILED


def test_a_failed_train_still_validates_deploys_and_scores_what_it_published(
    tmp_path: Path,
) -> None:
    result, calls = run(tmp_path, ["a", "b"], "df-train")
    statuses = status(result)
    assert statuses["train"] is TaskStatus.FAILED
    for key in ("validate_models", "deploy", "score", "monitor"):
        assert statuses[key] is TaskStatus.SUCCESS, key
    # Validation takes only train's published candidates (none if it published none) ...
    validate = next(argv for argv in calls if argv[0] == "df-validate-models")
    assert validate[validate.index("--only-train-candidates") + 1] == "true"
    # ... and monitor learns that train failed: the real one then fails the job at its end
    # (test_monitor, test_monthly_job), where this stub does not.
    assert upstream_state(calls) == "train=failed"
    assert result.state is JobResultState.SUCCESS_WITH_FAILURES


def upstream_state(calls: list[list[str]]) -> str:
    monitor = next(argv for argv in calls if argv[0] == "df-monitor")
    return monitor[monitor.index("--upstream-state") + 1]


def test_monitor_hears_train_succeeded_or_was_excluded(tmp_path: Path) -> None:
    _, calls = run(tmp_path / "retrain", ["a"])
    assert upstream_state(calls) == "train=success"
    _, calls = run(tmp_path / "no-retrain", [])
    assert upstream_state(calls) == "train=excluded"
