"""max_concurrent_runs across local processes: a run past the limit is skipped or queued."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest
import runner_fixture_tasks
from runner_support import write_bundle

from demand_forecasting.cli import main as cli_main
from demand_forecasting.runner import BundleError, JobResultState, JobRunner, load_bundle
from demand_forecasting.runner.concurrency import RunSlot, RunSlots

PKG = "package_name: runner_fixture_tasks"
STARTED = datetime(2026, 11, 28, 11, 0, tzinfo=timezone.utc)


def test_a_held_slot_refuses_the_next_run_and_names_its_holder(tmp_path: Path) -> None:
    slots = RunSlots(tmp_path)
    first = slots.acquire("dev", "monthly", 1, 111, STARTED, queue=False)
    assert isinstance(first, RunSlot)

    second = slots.acquire("dev", "monthly", 1, 222, STARTED, queue=False)

    assert not isinstance(second, RunSlot)
    assert [(h.pid, h.run_id) for h in second] == [(os.getpid(), 111)]
    # Another target's job, or another job, has its own slots.
    other_target = slots.acquire("prod", "monthly", 1, 333, STARTED, queue=False)
    other_job = slots.acquire("dev", "full_retrain", 1, 444, STARTED, queue=False)
    assert isinstance(other_target, RunSlot) and isinstance(other_job, RunSlot)

    first.release()
    third = slots.acquire("dev", "monthly", 1, 555, STARTED, queue=False)
    assert isinstance(third, RunSlot)


def test_the_limit_counts_slots_and_zero_skips_every_run(tmp_path: Path) -> None:
    slots = RunSlots(tmp_path)
    held = [slots.acquire("dev", "j", 2, run, STARTED, queue=False) for run in (1, 2, 3)]

    assert [isinstance(h, RunSlot) for h in held] == [True, True, False]
    refused = held[2]
    assert not isinstance(refused, RunSlot)
    assert sorted(h.run_id for h in refused) == [1, 2]
    assert slots.acquire("dev", "zero", 0, 9, STARTED, queue=True) == []


def test_a_queued_run_waits_for_the_slot_instead_of_skipping(tmp_path: Path) -> None:
    holder = RunSlots(tmp_path).acquire("dev", "j", 1, 1, STARTED, queue=False)
    assert isinstance(holder, RunSlot)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:
            holder.release()  # the running job ends while the next one waits

    got = RunSlots(tmp_path, sleep=sleep).acquire("dev", "j", 1, 2, STARTED, queue=True)

    assert isinstance(got, RunSlot)
    assert len(waits) == 3


def test_a_killed_run_leaves_no_stale_lock(tmp_path: Path) -> None:
    # Another process holds the slot, as a second `demand-forecasting run monthly` would.
    script = textwrap.dedent(
        f"""
        import sys, time
        from datetime import datetime, timezone
        from pathlib import Path
        from demand_forecasting.runner.concurrency import RunSlots
        slot = RunSlots(Path({str(tmp_path)!r})).acquire(
            "dev", "monthly", 1, 777, datetime.now(timezone.utc), queue=False)
        print("held", flush=True)
        time.sleep(120)
        """
    )
    other = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "held"
        refused = RunSlots(tmp_path).acquire("dev", "monthly", 1, 1, STARTED, queue=False)
        assert not isinstance(refused, RunSlot)
        assert [(h.pid, h.run_id) for h in refused] == [(other.pid, 777)]
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait()

    # SIGKILL ran no cleanup; the operating system dropped the lock with the process.
    assert isinstance(
        RunSlots(tmp_path).acquire("dev", "monthly", 1, 2, STARTED, queue=False), RunSlot
    )


JOBS = f"""\
resources:
  jobs:
    monthly:
      max_concurrent_runs: 1
      tasks:
        - task_key: only
          python_wheel_task: {{{PKG}, entry_point: record, parameters: [ran]}}
    parent:
      tasks:
        - task_key: child
          run_job_task:
            job_id: ${{resources.jobs.monthly.id}}
"""


def test_the_runner_skips_a_run_past_the_limit_and_runs_no_task(tmp_path: Path) -> None:
    slots = RunSlots(tmp_path / "locks")
    runner = JobRunner(load_bundle(write_bundle(tmp_path, JOBS)), slots=slots)
    other = slots.acquire("dev", "monthly", 1, 42, STARTED, queue=False)
    assert isinstance(other, RunSlot)

    skipped = runner.run("monthly")
    parent = runner.run("parent")

    assert skipped.state is JobResultState.SKIPPED
    assert skipped.tasks == []
    assert "run 42 (pid" in skipped.note and "max_concurrent_runs 1" in skipped.note
    assert runner_fixture_tasks.CALLS == []
    # A run_job_task whose job is skipped fails, naming why.
    assert parent.state is JobResultState.FAILED
    assert "already has 1 run(s) in progress" in (parent.tasks[0].error or "")

    other.release()
    assert runner.run("monthly").state is JobResultState.SUCCESS
    assert [args for _, args in runner_fixture_tasks.CALLS] == [["ran"]]


def test_a_reserved_slot_is_claimed_by_the_run_or_freed_when_it_cannot_run(
    tmp_path: Path,
) -> None:
    broken = JOBS.replace("entry_point: record", "entry_point: no_such_entry_point")
    slots = RunSlots(tmp_path / "locks")
    runner = JobRunner(load_bundle(write_bundle(tmp_path, broken)), slots=slots)

    assert runner.reserve("monthly")
    waiting = slots.acquire("dev", "monthly", 1, 5, STARTED, queue=False)
    assert not isinstance(waiting, RunSlot)
    assert "a run being planned (pid" in waiting[0].describe()
    with pytest.raises(BundleError):
        runner.run("monthly")  # planning fails: the reservation must not outlive it

    assert isinstance(slots.acquire("dev", "monthly", 1, 6, STARTED, queue=False), RunSlot)


def test_max_concurrent_runs_must_be_a_whole_number(tmp_path: Path) -> None:
    bad = JOBS.replace("max_concurrent_runs: 1", "max_concurrent_runs: many")

    with pytest.raises(BundleError, match="max_concurrent_runs is 'many'"):
        load_bundle(write_bundle(tmp_path, bad)).job("monthly")


def test_queue_enabled_is_read_from_the_job(tmp_path: Path) -> None:
    queued = JOBS.replace(
        "max_concurrent_runs: 1", "max_concurrent_runs: 2\n      queue: {enabled: true}"
    )
    bundle = load_bundle(write_bundle(tmp_path, queued))

    assert (bundle.job("monthly").max_concurrent_runs, bundle.job("monthly").queue) == (2, True)
    assert (bundle.job("parent").max_concurrent_runs, bundle.job("parent").queue) == (1, False)


def test_cli_run_started_while_the_job_runs_is_skipped_with_exit_code_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    monkeypatch.setenv("DEMAND_FORECASTING_HOME", str(state))
    root = write_bundle(tmp_path / "bundle", JOBS)
    running = RunSlots(state / "runs" / "locks").acquire(
        "dev", "monthly", 1, 9, STARTED, queue=False
    )
    assert isinstance(running, RunSlot)

    code = cli_main(["run", "monthly", "--bundle-root", str(root)])

    out, err = capsys.readouterr()
    assert code == 3
    assert "job 'monthly' SKIPPED, no task ran" in out
    assert "skipped: job 'monthly' already has 1 run(s) in progress" in err
    assert "run 9 (pid" in err
    assert runner_fixture_tasks.CALLS == []
    running.release()
    assert cli_main(["run", "monthly", "--bundle-root", str(root)]) == 0
