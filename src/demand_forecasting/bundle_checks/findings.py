"""A finding: one broken rule, named by file, key path and rule, with what to do."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

KeyPart = str | int
ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True, order=True)
class Finding:
    """One problem in the bundle or the pipelines.

    Attributes:
        file: the file, relative to the repository root (``resources/monthly_job.yml``).
        key: the key path inside the file (``resources.jobs.monthly.tasks[2].depends_on[0]``).
        rule: a short rule id (``dangling-depends-on``), stable for tests and grep.
        message: what is wrong and what to do.
        severity: ``error`` (the check fails) or ``warning`` (reported only).
    """

    file: str
    key: str
    rule: str
    message: str
    severity: str = ERROR

    @property
    def is_error(self) -> bool:
        """Whether this finding fails the check."""
        return self.severity == ERROR

    def __str__(self) -> str:
        label = "" if self.is_error else "warning: "
        return f"{self.file}: {self.key or '<top level>'}: {label}{self.message} [{self.rule}]"


def key_path(*parts: KeyPart) -> str:
    """``("resources", "jobs", "monthly", "tasks", 2)`` -> ``resources.jobs.monthly.tasks[2]``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def join(prefix: str, *parts: KeyPart) -> str:
    """Extend an already formatted key path."""
    rest = key_path(*parts)
    if not prefix:
        return rest
    if not rest:
        return prefix
    return prefix + rest if rest.startswith("[") else f"{prefix}.{rest}"


def sorted_unique(findings: Iterable[Finding]) -> list[Finding]:
    """Findings without duplicates, ordered by file, key and rule."""
    return sorted(set(findings))
