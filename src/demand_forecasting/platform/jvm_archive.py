"""A class-data-sharing (CDS) archive of Spark's classes for the local driver JVM.

A local run is one short-lived JVM that loads 20,000-30,000 classes from Spark's jars on first
use (parsing, verifying and linking each): the largest fixed cost of a small monthly run. The
JVM can map those classes, already parsed and verified, from an archive file instead
(``-XX:SharedArchiveFile``). Measured on the 2-core VM (``benchmarks/README.md``, "Session 4"):
Spark start plus a few Delta writes, a MERGE, a stream and a pandas UDF cost 50-53 s of JVM
CPU without an archive and 37-40 s with one.

The archive belongs to one Java runtime and one set of Spark jars (:func:`archive_key`), so it
is built on the machine, once, from what a real run loaded:

1. **No archive yet**: the next local Spark start records the classes it loads
   (``-XX:DumpLoadedClassList``) and starts a builder process (detached, at low priority)
   that waits for that JVM to end and then runs ``java -Xshare:dump`` with the list and the
   JVM's own class path. One start records at a time (a ``.recording`` marker); starts
   meanwhile run without an archive, as before.
2. **Archive present**: every local start maps it. A JVM that cannot use it (class path or
   runtime changed under the same key) ignores it and starts the usual way (``-Xshare:auto``),
   so the worst case is a start without the speed-up.
3. **Build failed**: the reason is kept in ``<key>.failed`` and the builder's output in
   ``<key>.log``; no new recording until that file is deleted.

Files live in the cache folder of :mod:`demand_forecasting.platform.spark` (~200 MB per
archive, one per Spark installation: a new build replaces the installation's older one).
``DEMAND_FORECASTING_SPARK_ARCHIVE``: ``on`` (default), ``use`` (map an archive that exists,
never record one: the test suite's setting, so that no test leaves a builder behind) or
``off``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SWITCH_ENV = "DEMAND_FORECASTING_SPARK_ARCHIVE"
#: A recording whose builder never finished (machine restarted) is retried after this long.
STALE_RECORDING_S = 24 * 3600
#: JVM options the dump must share with the runs that map the archive.
_MODULE_OPTIONS = ("--add-modules", "--add-opens", "--add-exports", "--enable-native-access")


MODES = ("on", "use", "off")


def mode() -> str:
    """``DEMAND_FORECASTING_SPARK_ARCHIVE``: on (default), use or off.

    Raises:
        ValueError: another value.
    """
    value = os.environ.get(SWITCH_ENV, "on").strip().lower() or "on"
    if value not in MODES:
        raise ValueError(f"{SWITCH_ENV}={value!r}: must be one of {', '.join(MODES)}")
    return value


def java_binary() -> Path | None:
    """The ``java`` Spark's launcher runs: ``$JAVA_HOME/bin/java``, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    return Path(found).resolve() if found and Path(found).is_file() else None


def archive_key(java: Path, jars_dir: Path) -> str:
    """``<slot>-<version>``: which Spark installation, and what decides whether an archive fits.

    The slot is the jars folder (each virtualenv has its own, and its own archive); the
    version hashes the Java runtime and every jar's name, size and time, so a new Spark or
    Java builds a new archive, which replaces the slot's old one.
    """
    slot = hashlib.sha256(str(jars_dir.resolve()).encode("utf-8")).hexdigest()[:8]
    parts = [str(java), str(java.stat().st_mtime_ns)]
    for jar in sorted(jars_dir.glob("*.jar")):
        stat = jar.stat()
        parts.append(f"{jar.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return f"{slot}-{hashlib.sha256('|'.join(parts).encode('utf-8')).hexdigest()[:12]}"


@dataclass(frozen=True)
class ArchiveFiles:
    """The files of one archive key in the cache folder."""

    folder: Path
    key: str

    def _file(self, suffix: str) -> Path:
        return self.folder / f"spark-cds-{self.key}{suffix}"

    @property
    def archive(self) -> Path:
        return self._file(".jsa")

    @property
    def class_list(self) -> Path:
        return self._file(".classlist")

    @property
    def spec(self) -> Path:
        """What the builder needs: JVM pid, java, class path, module options (JSON)."""
        return self._file(".json")

    @property
    def recording(self) -> Path:
        return self._file(".recording")

    @property
    def failed(self) -> Path:
        return self._file(".failed")

    @property
    def log(self) -> Path:
        return self._file(".log")


@dataclass(frozen=True)
class ArchivePlan:
    """What a local start does about the archive: options to add, and whether it records."""

    options: tuple[str, ...] = ()
    files: ArchiveFiles | None = None
    recording: bool = False

    def started(self, spark: Any) -> None:
        """After the JVM is up: when recording, start the builder that waits for it to end."""
        if not self.recording or self.files is None:
            return
        try:
            start_builder(self.files, jvm_facts(spark))
        except Exception as exc:  # best effort: a run never fails for its archive
            log.warning("Spark class archive: could not start the builder: %s", exc)
            self.files.recording.unlink(missing_ok=True)


def plan(cache_folder: Path, jars_dir: Path) -> ArchivePlan:
    """Decide the archive options of a local Spark start (see the module docstring)."""
    java = java_binary()
    wanted = mode()
    if wanted == "off" or java is None or not jars_dir.is_dir():
        return ArchivePlan()
    files = ArchiveFiles(cache_folder, archive_key(java, jars_dir))
    if files.archive.is_file():
        return ArchivePlan((f"-XX:SharedArchiveFile={files.archive}",), files)
    if wanted == "use":
        return ArchivePlan()
    if files.failed.is_file():
        log.debug("Spark class archive: an earlier build failed, see %s", files.failed)
        return ArchivePlan()
    if not _claim_recording(files):
        return ArchivePlan()
    files.class_list.unlink(missing_ok=True)
    log.info(
        "Spark class archive: none yet for this Java and Spark; this run records the classes "
        "it loads and a background process builds %s when it ends (once per machine; later "
        "local starts use it)",
        files.archive,
    )
    return ArchivePlan((f"-XX:DumpLoadedClassList={files.class_list}",), files, recording=True)


def _claim_recording(files: ArchiveFiles) -> bool:
    files.folder.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        if time.time() - files.recording.stat().st_mtime > STALE_RECORDING_S:
            files.recording.unlink()
    try:
        fd = os.open(files.recording, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False  # another start records right now
    with os.fdopen(fd, "w") as marker:
        marker.write(str(os.getpid()))
    return True


def jvm_facts(spark: Any) -> dict[str, Any]:
    """The running driver JVM's pid, java binary, class path and module options."""
    jvm = spark.sparkContext._jvm
    system = jvm.java.lang.System
    runtime = jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    arguments = [str(a) for a in runtime.getInputArguments()]
    return {
        "pid": int(jvm.java.lang.ProcessHandle.current().pid()),
        "java": str(Path(str(system.getProperty("java.home"))) / "bin" / "java"),
        "class_path": str(system.getProperty("java.class.path")),
        "options": [a for a in arguments if a.startswith(_MODULE_OPTIONS)],
    }


def start_builder(files: ArchiveFiles, facts: dict[str, Any]) -> None:
    """Write the spec and start :func:`build` in a detached, low-priority process."""
    files.spec.write_text(json.dumps(facts), encoding="utf-8")
    with files.log.open("w", encoding="utf-8") as out:
        subprocess.Popen(
            [sys.executable, "-m", __name__, str(files.spec)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def complete_lines(class_list: Path) -> int:
    """Drop a last line the JVM did not finish writing; return the number of class lines."""
    data = class_list.read_bytes()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        class_list.write_bytes(data)
    return sum(1 for line in data.splitlines() if line and not line.startswith(b"#"))


def dump_command(files: ArchiveFiles, facts: dict[str, Any], output: Path) -> list[str]:
    """The ``java -Xshare:dump`` command that builds the archive from the recorded list."""
    return [
        facts["java"],
        "-Xshare:dump",
        f"-XX:SharedClassListFile={files.class_list}",
        f"-XX:SharedArchiveFile={output}",
        *facts["options"],
        "-cp",
        facts["class_path"],
    ]


def build(spec: Path, poll_s: float = 1.0) -> int:
    """Wait for the recording JVM to end, then build the archive; 0 when it was built."""
    files = ArchiveFiles(spec.parent, spec.name.removeprefix("spark-cds-").removesuffix(".json"))
    try:
        facts = json.loads(spec.read_text(encoding="utf-8"))
        while _alive(int(facts["pid"])):
            time.sleep(poll_s)
        classes = complete_lines(files.class_list)
        if classes == 0:
            raise RuntimeError(f"{files.class_list} lists no classes")
        partial = files.archive.with_name(f".{files.archive.name}.partial")
        started = time.perf_counter()
        done = subprocess.run(
            dump_command(files, facts, partial), capture_output=True, text=True, check=False
        )
        if done.returncode != 0 or not partial.is_file():
            partial.unlink(missing_ok=True)
            raise RuntimeError(
                f"java -Xshare:dump exited {done.returncode}: {done.stdout[-2000:]}"
                f"{done.stderr[-2000:]}"
            )
        slot = files.key.split("-")[0]
        for old in files.folder.glob(f"spark-cds-{slot}-*.jsa"):
            old.unlink(missing_ok=True)
        os.replace(partial, files.archive)
        log.info(
            "built %s from %d recorded classes in %.0f s",
            files.archive,
            classes,
            time.perf_counter() - started,
        )
        files.class_list.unlink(missing_ok=True)
        return 0
    except Exception as exc:
        files.failed.write_text(
            f"building the Spark class archive failed: {exc}\nDelete this file to try again "
            f"(the next local Spark start records anew).\n",
            encoding="utf-8",
        )
        log.error("building the Spark class archive failed: %s", exc)
        return 1
    finally:
        files.recording.unlink(missing_ok=True)
        spec.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m demand_forecasting.platform.jvm_archive SPEC``: the builder process."""
    parser = argparse.ArgumentParser(description="Build the Spark class archive (see module doc).")
    parser.add_argument("spec", type=Path, help="the spark-cds-<key>.json a recording wrote")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with contextlib.suppress(OSError):
        os.nice(10)
    return build(args.spec)


if __name__ == "__main__":
    raise SystemExit(main())
