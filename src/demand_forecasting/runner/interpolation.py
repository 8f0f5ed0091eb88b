"""``${...}`` references in bundle YAML, resolved the way the Databricks CLI resolves them.

A string that is exactly one reference takes the referenced value as it is (a complex
variable stays a dict); a reference inside a longer string is rendered as text. Values that
contain references themselves are resolved on demand, so declaration order does not matter;
a reference cycle is an error. Job-run references (``{{...}}``) are left alone: they belong
to :mod:`demand_forecasting.runner.dynamic`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: One segment of a reference path, as the CLI spells it (``var.my_var``, ``[0]``).
_WORD = r"[a-zA-Z]+(?:[-_]*[a-zA-Z0-9]+)*"
REFERENCE = re.compile(r"\$\{(" + _WORD + r"(?:\." + _WORD + r"|\[[0-9]+\])*)\}")
_SEGMENT = re.compile(r"\.?(" + _WORD + r")|\[([0-9]+)\]")

PathKey = str | int
RefPath = tuple[PathKey, ...]


class SourcedStr(str):
    """A YAML string that remembers the file it came from, for error messages.

    Strings keep their file through merging, so an error in a value a target overrides
    names the file that set the value.
    """

    source: str

    def __new__(cls, value: str, source: str) -> SourcedStr:
        instance = super().__new__(cls, value)
        instance.source = source
        return instance


def source_of(value: object) -> str | None:
    """The file a YAML string came from, if it was tagged when loaded."""
    return getattr(value, "source", None)


def tag_sources(node: Any, source: str) -> Any:
    """Return ``node`` with every string that holds a ``${`` tagged with ``source``."""
    if isinstance(node, dict):
        return {key: tag_sources(value, source) for key, value in node.items()}
    if isinstance(node, list):
        return [tag_sources(value, source) for value in node]
    if isinstance(node, str) and "${" in node:
        return SourcedStr(node, source)
    return node


def parse_path(text: str) -> RefPath:
    """``"var.a.b[0]"`` -> ``("var", "a", "b", 0)``."""
    parts: list[PathKey] = []
    for match in _SEGMENT.finditer(text):
        word, index = match.groups()
        parts.append(word if word is not None else int(index))
    return tuple(parts)


def format_path(path: RefPath) -> str:
    """``("var", "a", 0)`` -> ``"var.a[0]"``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


class UndefinedReference(LookupError):
    """A reference names nothing the bundle defines (or is part of a cycle)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def render(value: Any) -> str:
    """A referenced value as it appears inside a longer string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


@dataclass(frozen=True)
class Problem:
    """A reference that could not be resolved, where it was found."""

    path: RefPath
    source: str | None
    reference: str
    reason: str


Lookup = Callable[[RefPath], Any]


def resolve_string(
    text: str, lookup: Lookup, *, skip: Callable[[RefPath], bool] = lambda _: False
) -> Any:
    """Resolve the references in one string.

    Raises:
        UndefinedReference: the first reference that cannot be resolved.
    """
    matches = list(REFERENCE.finditer(text))
    if not matches:
        return text
    if len(matches) == 1 and matches[0].group(0) == text:
        path = parse_path(matches[0].group(1))
        return text if skip(path) else lookup(path)

    def substitute(match: re.Match[str]) -> str:
        path = parse_path(match.group(1))
        return match.group(0) if skip(path) else render(lookup(path))

    resolved = REFERENCE.sub(substitute, text)
    source = source_of(text)
    return SourcedStr(resolved, source) if source and "${" in resolved else resolved


def resolve_tree(
    node: Any,
    lookup: Lookup,
    problems: list[Problem],
    *,
    skip: Callable[[RefPath], bool] = lambda _: False,
    path: RefPath = (),
) -> Any:
    """Return ``node`` with every reference resolved; unresolvable ones go to ``problems``.

    A string with a bad reference is kept as it is, so that all problems are collected in
    one pass.
    """
    if isinstance(node, dict):
        return {
            key: resolve_tree(value, lookup, problems, skip=skip, path=(*path, key))
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [
            resolve_tree(value, lookup, problems, skip=skip, path=(*path, index))
            for index, value in enumerate(node)
        ]
    if isinstance(node, str) and "${" in node:
        try:
            return resolve_string(node, lookup, skip=skip)
        except UndefinedReference as exc:
            reference = _first_failing(node, lookup, skip) or node
            problems.append(Problem(path, source_of(node), reference, exc.reason))
            return node
    return node


def _first_failing(text: str, lookup: Lookup, skip: Callable[[RefPath], bool]) -> str | None:
    for match in REFERENCE.finditer(text):
        path = parse_path(match.group(1))
        if skip(path):
            continue
        try:
            lookup(path)
        except UndefinedReference:
            return match.group(0)
    return None


class Scope:
    """Named roots (``var``, ``bundle``, ``workspace``, ``resources``) with lazy resolution.

    Args:
        roots: the values references walk into, by first path segment.
        describe: how to say that ``path`` is undefined (the message's reason).
        special: answers for paths that are computed rather than stored (e.g. a job's
            local id); returns ``None`` to fall back to walking ``roots``.
        skip: references left unresolved (resolved in a later phase).
    """

    def __init__(
        self,
        roots: Mapping[str, Any],
        *,
        describe: Callable[[RefPath], str],
        special: Callable[[RefPath], Any] = lambda _: None,
        skip: Callable[[RefPath], bool] = lambda _: False,
    ) -> None:
        self._roots = roots
        self._describe = describe
        self._special = special
        self._skip = skip
        self._cache: dict[RefPath, Any] = {}
        self._stack: list[RefPath] = []

    def lookup(self, path: RefPath) -> Any:
        """The resolved value at ``path``.

        Raises:
            UndefinedReference: nothing is defined there, or resolving it needs itself.
        """
        if path in self._cache:
            return self._cache[path]
        if path in self._stack:
            loop = (*self._stack[self._stack.index(path) :], path)
            cycle = " -> ".join(format_path(p) for p in loop)
            raise UndefinedReference(f"reference cycle {cycle}")
        self._stack.append(path)
        try:
            value = self._walk(path)
        finally:
            self._stack.pop()
        self._cache[path] = value
        return value

    def _walk(self, path: RefPath) -> Any:
        special = self._special(path)
        if special is not None:
            return special
        node: Any = self._roots
        for depth, part in enumerate(path):
            node = self._resolved(node, path[:depth])
            in_map = isinstance(node, Mapping) and isinstance(part, str) and part in node
            in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
            if not (in_map or in_list):
                raise UndefinedReference(self._describe(path))
            node = node[part]
        return self._resolved(node, path, deep=True)

    def _resolved(self, node: Any, at: RefPath, *, deep: bool = False) -> Any:
        if isinstance(node, str) and "${" in node:
            return resolve_string(node, self.lookup, skip=self._skip)
        if deep and isinstance(node, dict | list):
            problems: list[Problem] = []
            resolved = resolve_tree(node, self.lookup, problems, skip=self._skip, path=at)
            if problems:
                first = problems[0]
                raise UndefinedReference(f"{first.reason} (inside {format_path(first.path)})")
            return resolved
        return node
