"""The Spark class archive: when a start records, maps or leaves it; a real build with java."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pyspark
import pytest

from demand_forecasting.platform import jvm_archive
from demand_forecasting.platform.jvm_archive import ArchiveFiles, archive_key, build, plan

SPARK_JARS = Path(pyspark.__file__).parent / "jars"


@pytest.fixture
def jars(tmp_path: Path) -> Path:
    folder = tmp_path / "jars"
    folder.mkdir()
    (folder / "a-1.0.jar").write_bytes(b"a")
    return folder


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(jvm_archive.SWITCH_ENV, "on")
    return tmp_path / "cache"


def files_of(cache: Path, jars: Path) -> ArchiveFiles:
    java = jvm_archive.java_binary()
    assert java is not None, "java is needed for Spark (and for this test)"
    return ArchiveFiles(cache, archive_key(java, jars))


def test_first_start_records_and_one_start_at_a_time(cache: Path, jars: Path) -> None:
    first = plan(cache, jars)
    files = files_of(cache, jars)
    assert first.recording
    assert first.options == (f"-XX:DumpLoadedClassList={files.class_list}",)
    assert files.recording.is_file()
    # A second start while the first records runs as before: no options, no recording.
    second = plan(cache, jars)
    assert second.options == () and not second.recording


def test_a_built_archive_is_mapped(cache: Path, jars: Path) -> None:
    files = files_of(cache, jars)
    cache.mkdir()
    files.archive.write_bytes(b"archive")
    started = plan(cache, jars)
    assert started.options == (f"-XX:SharedArchiveFile={files.archive}",)
    assert not started.recording and not files.recording.exists()


def test_use_mode_maps_but_never_records(
    cache: Path, jars: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(jvm_archive.SWITCH_ENV, "use")
    files = files_of(cache, jars)
    assert plan(cache, jars).options == ()
    assert not files.recording.exists()
    cache.mkdir()
    files.archive.write_bytes(b"archive")
    assert plan(cache, jars).options == (f"-XX:SharedArchiveFile={files.archive}",)


def test_off_mode_ignores_an_archive(
    cache: Path, jars: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = files_of(cache, jars)
    cache.mkdir()
    files.archive.write_bytes(b"archive")
    monkeypatch.setenv(jvm_archive.SWITCH_ENV, "off")
    assert plan(cache, jars).options == ()


def test_a_bad_mode_is_named(cache: Path, jars: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(jvm_archive.SWITCH_ENV, "sometimes")
    with pytest.raises(ValueError, match="DEMAND_FORECASTING_SPARK_ARCHIVE='sometimes'"):
        plan(cache, jars)


def test_a_failed_build_is_not_retried_until_its_file_is_deleted(cache: Path, jars: Path) -> None:
    files = files_of(cache, jars)
    cache.mkdir()
    files.failed.write_text("java -Xshare:dump exited 1")
    assert plan(cache, jars).options == ()
    files.failed.unlink()
    assert plan(cache, jars).recording


def test_a_stale_recording_is_taken_over(cache: Path, jars: Path) -> None:
    files = files_of(cache, jars)
    cache.mkdir()
    files.recording.write_text("12345")
    assert not plan(cache, jars).recording
    old = files.recording.stat().st_mtime - jvm_archive.STALE_RECORDING_S - 60
    os.utime(files.recording, (old, old))
    assert plan(cache, jars).recording


def test_the_key_follows_the_jars_and_their_folder(tmp_path: Path, jars: Path) -> None:
    java = jvm_archive.java_binary()
    assert java is not None
    before = archive_key(java, jars)
    (jars / "b-2.0.jar").write_bytes(b"bb")
    after = archive_key(java, jars)
    assert before != after and before.split("-")[0] == after.split("-")[0]
    other = tmp_path / "other"
    other.mkdir()
    (other / "a-1.0.jar").write_bytes(b"a")
    assert archive_key(java, other).split("-")[0] != before.split("-")[0]


def test_an_unfinished_last_line_is_dropped(tmp_path: Path) -> None:
    listing = tmp_path / "classes"
    listing.write_bytes(b"# header\njava/lang/Object\norg/apache/spark/Spar")
    assert jvm_archive.complete_lines(listing) == 1
    assert listing.read_bytes() == b"# header\njava/lang/Object\n"


def test_facts_of_the_running_driver(spark: object) -> None:
    facts = jvm_archive.jvm_facts(spark)
    assert facts["pid"] > 0 and Path(facts["java"]).is_file()
    assert str(SPARK_JARS) in facts["class_path"]
    assert any(o.startswith("--add-opens") for o in facts["options"])


def spark_java_command(*options: str) -> list[str]:
    java = jvm_archive.java_binary()
    assert java is not None
    return [
        str(java),
        *options,
        "-cp",
        f"{SPARK_JARS}/*",
        "org.apache.spark.deploy.SparkSubmit",
        "--version",
    ]


def test_a_real_build_from_a_recorded_jvm(tmp_path: Path, jars: Path) -> None:
    """Record what a real JVM on Spark's jars loads, build, then map Spark classes from it."""
    files = ArchiveFiles(tmp_path, "slot-version")
    recorded = subprocess.Popen(
        spark_java_command(f"-XX:DumpLoadedClassList={files.class_list}"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    recorded.wait(timeout=120)
    files.recording.write_text(str(os.getpid()))
    files.spec.write_text(
        json.dumps(
            {
                "pid": recorded.pid,
                "java": str(jvm_archive.java_binary()),
                "class_path": f"{SPARK_JARS}/*",
                "options": [],
            }
        )
    )
    older = tmp_path / "spark-cds-slot-older.jsa"
    older.write_bytes(b"the slot's previous archive")

    assert build(files.spec, poll_s=0.1) == 0, files.failed.read_text()

    assert files.archive.stat().st_size > 1_000_000
    assert not older.exists() and not files.recording.exists() and not files.spec.exists()
    # -Xshare:on fails instead of falling back when the archive cannot be mapped.
    mapped = subprocess.run(
        spark_java_command(
            "-Xshare:on", f"-XX:SharedArchiveFile={files.archive}", "-Xlog:class+load=info"
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "org.apache.spark.deploy.SparkSubmit source: shared objects file" in mapped.stdout


def test_a_failed_build_says_why(tmp_path: Path) -> None:
    files = ArchiveFiles(tmp_path, "slot-version")
    files.class_list.write_text("# nothing was recorded\n")
    files.recording.write_text("1")
    files.spec.write_text(
        json.dumps({"pid": 2**22 + 7, "java": "java", "class_path": "", "options": []})
    )
    assert build(files.spec, poll_s=0.1) == 1
    assert "lists no classes" in files.failed.read_text()
    assert not files.recording.exists() and not files.archive.exists()
