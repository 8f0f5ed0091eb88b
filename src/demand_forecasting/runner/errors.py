"""The one error the runner raises before any task runs: the bundle cannot run as written."""

from __future__ import annotations

from collections.abc import Sequence


class BundleError(Exception):
    """The bundle cannot be loaded, resolved or run as written; nothing has run yet.

    Every problem names the file, the job or resource, the YAML key and what to do, so
    that one run lists everything to fix instead of one problem at a time.
    """

    def __init__(self, problems: Sequence[str] | str, *, summary: str = "") -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.summary = summary
        super().__init__(str(self))

    def __str__(self) -> str:
        if len(self.problems) == 1 and not self.summary:
            return self.problems[0]
        header = self.summary or f"{len(self.problems)} problems in the bundle"
        return header + ":\n" + "\n".join(f"  - {problem}" for problem in self.problems)
