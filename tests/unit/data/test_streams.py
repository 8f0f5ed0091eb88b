"""Is anything new? The checkpoint read as Spark writes it (local fast path); a failed batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from demand_forecasting.data.streams import delta_source_caught_up, file_source_caught_up

METADATA = json.dumps({"batchWatermarkMs": 0, "batchTimestampMs": 1, "conf": {}})


def _offsets(checkpoint: Path, batch: int, offset: dict[str, object], committed: bool) -> None:
    (checkpoint / "offsets").mkdir(parents=True, exist_ok=True)
    (checkpoint / "commits").mkdir(parents=True, exist_ok=True)
    (checkpoint / "offsets" / str(batch)).write_text(
        f"v1\n{METADATA}\n{json.dumps(offset)}", encoding="utf-8"
    )
    if committed:
        (checkpoint / "commits" / str(batch)).write_text(
            'v1\n{"nextBatchWatermarkMs":0}', encoding="utf-8"
        )


def _file_batch(checkpoint: Path, batch: int, files: list[Path], committed: bool = True) -> None:
    sources = checkpoint / "sources" / "0"
    sources.mkdir(parents=True, exist_ok=True)
    entries = [
        json.dumps({"path": f.absolute().as_uri(), "timestamp": 1, "batchId": batch}) for f in files
    ]
    (sources / str(batch)).write_text("v1\n" + "\n".join(entries), encoding="utf-8")
    _offsets(checkpoint, batch, {"logOffset": batch}, committed)


def _landed(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / n for n in names]
    for p in paths:
        p.write_text("h\n1\n", encoding="utf-8")
    return paths


def test_file_source_is_caught_up_only_when_every_file_is_committed(tmp_path: Path) -> None:
    folder, checkpoint = tmp_path / "landing dir", tmp_path / "checkpoint"
    assert not file_source_caught_up(str(checkpoint), folder / "missing")
    first = _landed(folder, "m_2015-01.csv", "m_2015-02.csv")
    assert not file_source_caught_up(str(checkpoint), folder)  # no checkpoint yet
    _file_batch(checkpoint, 0, first)
    assert file_source_caught_up(str(checkpoint), folder)

    # Hidden and `_` files are not Spark's to read; a new file is.
    _landed(folder, ".m_2015-03.csv.tmp", "_SUCCESS")
    assert file_source_caught_up(str(checkpoint), folder)
    new = _landed(folder, "m_2015-03.csv")
    assert not file_source_caught_up(str(checkpoint), folder)

    # A batch planned but not committed (a crash) must be run again by the query.
    _file_batch(checkpoint, 1, new, committed=False)
    assert not file_source_caught_up(str(checkpoint), folder)
    (checkpoint / "commits" / "1").write_text("v1\n{}", encoding="utf-8")
    assert file_source_caught_up(str(checkpoint), folder)

    # A sub-folder is left to Spark's own listing.
    (folder / "sub").mkdir()
    assert not file_source_caught_up(str(checkpoint), folder)


def test_file_source_reads_compacted_logs(tmp_path: Path) -> None:
    folder, checkpoint = tmp_path / "landing", tmp_path / "checkpoint"
    files = _landed(folder, "a.csv", "b.csv", "c.csv")
    _file_batch(checkpoint, 0, files[:1])
    compact = checkpoint / "sources" / "0" / "1.compact"
    entries = [json.dumps({"path": f.as_uri(), "timestamp": 1, "batchId": 0}) for f in files[:2]]
    compact.write_text("v1\n" + "\n".join(entries), encoding="utf-8")
    _offsets(checkpoint, 1, {"logOffset": 1}, committed=True)
    assert not file_source_caught_up(str(checkpoint), folder)  # c.csv is new
    _file_batch(checkpoint, 2, files[2:])
    assert file_source_caught_up(str(checkpoint), folder)


def _delta_table(table: Path, versions: int, table_id: str = "t-1") -> None:
    log = table / "_delta_log"
    log.mkdir(parents=True)
    for v in range(versions):
        actions = [{"commitInfo": {}}]
        if v == 0:
            actions.append({"metaData": {"id": table_id}})
        (log / f"{v:020d}.json").write_text("\n".join(map(json.dumps, actions)), "utf-8")


def _delta_offset(version: int, index: int = -1, table_id: str = "t-1") -> dict[str, object]:
    return {
        "sourceVersion": 1,
        "reservoirId": table_id,
        "reservoirVersion": version,
        "index": index,
        "isStartingVersion": False,
    }


def test_delta_source_is_caught_up_only_past_the_latest_version(tmp_path: Path) -> None:
    table, checkpoint = tmp_path / "bronze", tmp_path / "checkpoint"
    _delta_table(table, 3)  # versions 0, 1, 2
    assert not delta_source_caught_up(str(checkpoint), table)  # never read
    _offsets(checkpoint, 0, _delta_offset(2), committed=True)
    assert not delta_source_caught_up(str(checkpoint), table)  # version 2 not read yet
    _offsets(checkpoint, 1, _delta_offset(3), committed=False)
    assert not delta_source_caught_up(str(checkpoint), table)  # planned, not committed
    (checkpoint / "commits" / "1").write_text("v1\n{}", encoding="utf-8")
    assert delta_source_caught_up(str(checkpoint), table)

    # The same position on another table, or inside a version, is not "done".
    _offsets(checkpoint, 2, _delta_offset(3, table_id="t-2"), committed=True)
    assert not delta_source_caught_up(str(checkpoint), table)
    _offsets(checkpoint, 3, _delta_offset(3, index=4), committed=True)
    assert not delta_source_caught_up(str(checkpoint), table)


_FAILING_STREAM = """
import sys
from pathlib import Path
from demand_forecasting.data.streams import run_available_now
from demand_forecasting.platform.spark import get_spark

tmp = Path(sys.argv[1])
spark = get_spark(on_databricks=False, scratch_dir=tmp / "spark")
source = spark.readStream.schema("h string").option("header", True).csv(str(tmp / "landing"))

def refuse(batch, batch_id):
    raise LookupError("too many bad rows in batch " + str(batch_id))

try:
    run_available_now(source, refuse, str(tmp / "checkpoint"), "refusing_stream")
except LookupError as exc:
    print("raised:", exc)
seen = []
run_available_now(source, lambda b, i: seen.append(b.count()), str(tmp / "ok"), "ok")
print("then:", seen)
"""


def test_a_failed_batch_function_raises_its_own_error_once_without_stack_traces(
    tmp_path: Path,
) -> None:
    # A process of its own: what it prints is what a person sees (the JVM writes to the
    # process's stderr, which the test session's shared Spark cannot show a test).
    _landed(tmp_path / "landing", "a.csv")
    done = subprocess.run(
        [sys.executable, "-c", _FAILING_STREAM, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYSPARK_PYTHON": sys.executable},
    )

    assert "raised: too many bad rows in batch 0" in done.stdout, done.stderr[-2000:]
    # py4j's callback server and the JVM's stream execution did not print it again with
    # their stack traces; a stream run afterwards still works.
    assert "MicroBatchExecution" not in done.stderr
    assert "Python Proxy" not in done.stderr
    assert "then: [1]" in done.stdout
