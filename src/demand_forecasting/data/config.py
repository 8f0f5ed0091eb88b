"""Dataset configs: what each landing column means, one YAML file per dataset.

A config names the landing files' columns and maps them to canonical snake_case names
(``rename``), then says which canonical columns are the series keys, the month (and its
format), the target, the exogenous regressors (and which of them are planned ahead) and the
model-segment keys. Adding a dataset needs a config file and landing files, no code.

Configs ship inside the package (``demand_forecasting/conf/datasets/<name>.yml``) so that the
wheel on Databricks has them; ``--dataset`` takes such a name or the path of a YAML file
(a workspace file or a volume on Databricks). A config may ``extends: <name>`` another one and
override only what differs (mappings merge, lists and values replace).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

#: Canonical names the pipeline adds itself; a dataset may not use them for its columns.
RESERVED_COLUMNS = frozenset(
    {
        "y",
        "segment",
        "is_gap",
        "batch_id",
        "source_file",
        "file_modification_time",
        "load_time",
        "validated_at",
        "failed_rule",
        "failed_rules",
        "line_terminated",
        "year",
        "quarter",
        "month_of_year",
        "yoy_growth",
    }
)
#: Separator of the joined series keys when a dataset has no series id column.
SERIES_KEY_SEPARATOR = "|"
#: Separator of the slugged segment key values in a segment name.
SEGMENT_SEPARATOR = "__"

_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
_MONTH_PATTERN = re.compile(r"^(yyyy|MMMM|MMM|MM|dd|HH|mm|ss|[-/ .:_T])+$")
_MONTH_FIELD = re.compile(r"M+")
_STRFTIME = {
    "yyyy": "%Y",
    "MMMM": "%B",
    "MMM": "%b",
    "MM": "%m",
    "dd": "%d",
    "HH": "%H",
    "mm": "%M",
    "ss": "%S",
}
#: The English month names a month pattern with ``MMM`` or ``MMMM`` reads, in any case: the
#: full name, its first three letters, and ``Sept`` (Australian and British usage, as the PBS
#: data writes September; Java's and Python's ``MMM``/``%b`` read only ``Sep``).
MONTH_NAMES: tuple[tuple[str, ...], ...] = (
    ("january", "jan"),
    ("february", "feb"),
    ("march", "mar"),
    ("april", "apr"),
    ("may",),
    ("june", "jun"),
    ("july", "jul"),
    ("august", "aug"),
    ("september", "sept", "sep"),
    ("october", "oct"),
    ("november", "nov"),
    ("december", "dec"),
)
_PACKAGE_CONF = "conf/datasets"

#: The keys a config may have once ``extends`` is resolved: at the top (``""``) and inside
#: the sections that are mappings. A key not listed (a typo) is an error, never ignored.
CONFIG_KEYS: dict[str, tuple[str, ...]] = {
    "": (
        "name",
        "description",
        "file_prefix",
        "rename",
        "series_id",
        "series_keys",
        "month",
        "target",
        "exogenous",
        "planned",
        "segment",
        "source",
    ),
    "month": ("column", "format"),
    "segment": ("keys", "known_values", "groups"),
}
_REQUIRED_KEYS = (
    "name",
    "rename",
    "series_keys",
    "month.column",
    "month.format",
    "target",
    "segment.keys",
)
_MAPPING_KEYS = ("rename", "month", "segment", "segment.known_values", "segment.groups", "source")
_LIST_KEYS = ("series_keys", "exogenous", "planned", "segment.keys")


class DatasetConfigError(ValueError):
    """A dataset config is missing, unreadable or inconsistent."""


def slugify(value: str) -> str:
    """Lowercase ``value`` and turn every run of characters outside ``[a-z0-9]`` into ``_``.

    ``"New South Wales"`` -> ``"new_south_wales"``. The same rule in Spark is
    :func:`demand_forecasting.data.rules.slug_column`.
    """
    return re.sub(r"[^a-z0-9]+", "_", value.lower()).strip("_")


def month_strftime(pattern: str) -> str:
    """The Python ``strftime`` equivalent of a month pattern (``yyyy-MM-dd`` -> ``%Y-%m-%d``,
    ``yyyy MMM`` -> ``%Y %b``), for writing months; parsing reads names by
    :func:`month_name_rewrites` instead, which ``%b`` (locale-bound, no ``Sept``) cannot."""
    return re.sub("yyyy|MMMM|MMM|MM|dd|HH|mm|ss", lambda m: _STRFTIME[m.group(0)], pattern)


def reads_month_names(pattern: str) -> bool:
    """Whether a month pattern writes the month as a name (``MMM`` or ``MMMM``)."""
    return "MMM" in pattern


def numeric_month_pattern(pattern: str) -> str:
    """``pattern`` with its month name field as a number (``yyyy MMM`` -> ``yyyy MM``): the
    pattern a month text is parsed with once :func:`month_name_rewrites` made its name a
    number."""
    return re.sub("MMMM?", "MM", pattern)


def _name_regex(names: Sequence[str]) -> str:
    # Whole words only ("Mayo" is no May), in any case; digits may touch ("1991Jul").
    return rf"(?i)(?<![A-Za-z])(?:{'|'.join(names)})(?![A-Za-z])"


#: Matches a month text that holds one of :data:`MONTH_NAMES` (Python ``re`` and Java regex).
ANY_MONTH_NAME = _name_regex([n for names in MONTH_NAMES for n in names])


def month_name_rewrites() -> list[tuple[str, str]]:
    """``(regex, two-digit month)`` for each month: replacing every regex by its number turns
    ``1991 Sept`` into ``1991 09``. The same regexes serve Python (landing) and Spark (the row
    rules), so that both read exactly the same names."""
    return [(_name_regex(names), f"{number:02d}") for number, names in enumerate(MONTH_NAMES, 1)]


def parse_month(text: str) -> date:
    """Parse ``YYYY-MM`` (a command-line month) into the first day of that month.

    Raises:
        ValueError: ``text`` is not a month like ``2015-12``.
    """
    match = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"month {text!r} is not YYYY-MM (e.g. 2015-12)")
    return date(int(match.group(1)), int(match.group(2)), 1)


def add_month(month: date, months: int = 1) -> date:
    """The first day of the month ``months`` after ``month`` (negative: before)."""
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def month_count(first: date, last: date) -> int:
    """How many months from ``first``'s to ``last``'s, both counted (0 if ``last`` is before)."""
    return max(0, (last.year - first.year) * 12 + last.month - first.month + 1)


@dataclass(frozen=True)
class GroupedKey:
    """A segment key derived from a column by mapping each value to its group."""

    name: str
    source: str
    members: Mapping[str, tuple[str, ...]]

    def group_of(self) -> dict[str, str]:
        """``{member value: group}``."""
        return {member: group for group, values in self.members.items() for member in values}


@dataclass(frozen=True)
class PackageCsvSource:
    """The full history as a CSV file inside an installed package (the landing format)."""

    package: str
    resource: str
    #: Keep only rows whose landing column has one of the listed values.
    include: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class CsvFileSource:
    """The full history as one CSV file of your own, in the landing format (``land --from-csv``).

    Its header holds the dataset's landing column names (the keys of ``rename``); other
    columns are not landed.
    """

    path: Path


@dataclass(frozen=True)
class SyntheticSource:
    """The synthetic generator's defaults (see :mod:`demand_forecasting.data.synthetic`)."""

    series: int
    seed: int
    first_month: date
    last_month: date


@dataclass(frozen=True)
class DatasetConfig:
    """One dataset's column contract, checked on construction.

    Raises:
        DatasetConfigError: naming the dataset, the field and what is wrong.
    """

    name: str
    description: str
    file_prefix: str
    #: ``(landing column, canonical name)`` in the landing files' header order.
    rename: tuple[tuple[str, str], ...]
    series_keys: tuple[str, ...]
    series_id: str | None
    month_column: str
    month_format: str
    target: str
    exogenous: tuple[str, ...]
    segment_keys: tuple[str, ...]
    known_values: Mapping[str, tuple[str, ...]]
    groups: tuple[GroupedKey, ...]
    source: PackageCsvSource | CsvFileSource | SyntheticSource | None = None
    #: Exogenous columns whose values for future months come as plans (price lists, promo
    #: calendars): plan files load into silver_plans (:mod:`demand_forecasting.data.plans`),
    #: and the models use them at the target month. The other exogenous columns stay unused
    #: by the models.
    planned: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        canonical = [c for _, c in self.rename]
        self._require(
            len(canonical) == len(set(canonical)),
            "rename",
            "maps two landing columns to the same canonical name",
        )
        for name in canonical:
            self._require(
                bool(_SNAKE.match(name)),
                "rename",
                f"canonical name {name!r} is not snake_case ([a-z][a-z0-9_]*)",
            )
            self._require(
                name not in RESERVED_COLUMNS,
                "rename",
                f"canonical name {name!r} is reserved for the pipeline",
            )
        self._require(
            bool(_SNAKE.match(self.file_prefix)),
            "file_prefix",
            f"{self.file_prefix!r} is not snake_case",
        )
        for key, name in self._roles():
            self._require(
                name in canonical,
                key,
                f"{name!r} is not a canonical name of `rename` ({', '.join(canonical)}): "
                "name the column by its canonical name (the right-hand side of `rename`)",
            )
        self._require(bool(self.series_keys), "series_keys", "name at least one series key")
        self._require(
            bool(_MONTH_PATTERN.match(self.month_format))
            and "yyyy" in self.month_format
            and _MONTH_FIELD.findall(self.month_format) in (["MM"], ["MMM"], ["MMMM"]),
            "month.format",
            f"{self.month_format!r} is not a month pattern of yyyy, one month field (MM a "
            "number, MMM or MMMM an English name such as Jul, Sept or July), dd, HH, mm, ss "
            "and separators (e.g. yyyy-MM-dd, or yyyy MMM for 1991 Jul)",
        )
        self._check_segment(canonical)
        for column in self.planned:
            self._require(
                column in self.exogenous,
                "planned",
                f"{column!r} is not in `exogenous` ({', '.join(self.exogenous) or 'empty'}): a "
                "planned covariate must also be listed under `exogenous` (its actual values "
                "are the model's history of it)",
            )
        self._require(
            len(self.planned) == len(set(self.planned)), "planned", "names a column twice"
        )

    def _roles(self) -> list[tuple[str, str]]:
        """(config key, canonical column) of every column the config gives a role."""
        roles = [("series_keys", key) for key in self.series_keys]
        roles += [("month.column", self.month_column), ("target", self.target)]
        roles += [("exogenous", column) for column in self.exogenous]
        if self.series_id:
            roles.append(("series_id", self.series_id))
        return roles

    def _check_segment(self, canonical: list[str]) -> None:
        grouped = {g.name: g for g in self.groups}
        self._require(bool(self.segment_keys), "segment.keys", "name at least one segment key")
        for key in self.segment_keys:
            if key in grouped:
                self._require(
                    grouped[key].source in canonical,
                    f"segment.groups.{key}.from",
                    f"{grouped[key].source!r} is not a canonical column",
                )
            else:
                self._require(
                    key in canonical,
                    "segment.keys",
                    f"{key!r} is neither a canonical column nor a group",
                )
                self._require(
                    bool(self.known_values.get(key)),
                    "segment.known_values",
                    f"list the known values of segment key {key!r}",
                )

    def _require(self, ok: bool, where: str, problem: str) -> None:
        if not ok:
            raise DatasetConfigError(f"dataset config {self.name!r}, {where}: {problem}")

    @property
    def landing_columns(self) -> tuple[str, ...]:
        """The landing files' header, in order."""
        return tuple(source for source, _ in self.rename)

    @property
    def canonical_columns(self) -> tuple[str, ...]:
        """The canonical names, in landing order (the columns of bronze)."""
        return tuple(name for _, name in self.rename)

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Canonical columns that may not be null: the keys, the month and the target."""
        keys = [*self.series_keys, *([self.series_id] if self.series_id else [])]
        attributes = [k for k in self.segment_attributes if k not in keys]
        grouped_sources = [g.source for g in self.groups if g.source not in keys]
        return tuple(
            dict.fromkeys([*keys, *attributes, *grouped_sources, self.month_column, self.target])
        )

    @property
    def segment_attributes(self) -> tuple[str, ...]:
        """Plain (not grouped) segment keys: columns of the landing files."""
        grouped = {g.name for g in self.groups}
        return tuple(k for k in self.segment_keys if k not in grouped)

    def value_domains(self) -> dict[str, tuple[str, ...]]:
        """``{canonical column: its known values}`` for every column a segment depends on."""
        domains = {k: tuple(self.known_values[k]) for k in self.segment_attributes}
        for group in self.groups:
            domains[group.source] = tuple(group.group_of())
        return domains

    def segment_of(self, values: Mapping[str, str]) -> str:
        """The segment name of one series, from its canonical column values.

        ``{"state": "New South Wales", "industry": "Liquor retailing"}`` ->
        ``"new_south_wales__food_retailing"``.
        """
        grouped = {g.name: g for g in self.groups}
        parts = [
            grouped[k].group_of()[values[grouped[k].source]] if k in grouped else values[k]
            for k in self.segment_keys
        ]
        return SEGMENT_SEPARATOR.join(slugify(p) for p in parts)

    def known_segments(self) -> tuple[str, ...]:
        """Every segment the config allows (the product of the segment keys' values)."""
        grouped = {g.name: g for g in self.groups}
        combos: list[list[str]] = [[]]
        for key in self.segment_keys:
            values = list(grouped[key].members) if key in grouped else self.known_values[key]
            combos = [[*c, slugify(v)] for c in combos for v in values]
        return tuple(sorted(SEGMENT_SEPARATOR.join(c) for c in combos))


def available_datasets() -> list[str]:
    """Names of the dataset configs shipped in the package."""
    folder = resources.files("demand_forecasting").joinpath(_PACKAGE_CONF)
    return sorted(p.name[: -len(".yml")] for p in folder.iterdir() if p.name.endswith(".yml"))


def load_dataset_config(name_or_path: str) -> DatasetConfig:
    """Load a dataset config by package name (``aus_retail``) or from a YAML file path.

    Raises:
        DatasetConfigError: the config does not exist or breaks the contract (the message
            names the file and the field).
    """
    raw = _load_raw(name_or_path, seen=())
    check_layout(raw, name_or_path)
    try:
        return _from_mapping(raw)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, DatasetConfigError):
            raise
        raise DatasetConfigError(
            f"dataset config {name_or_path!r} is malformed: {exc!r}. Compare it with "
            "conf/datasets/aus_retail.yml."
        ) from exc


def check_layout(raw: Mapping[str, Any], origin: str) -> None:
    """Check a config's keys and the shape of their values before reading them.

    Raises:
        DatasetConfigError: a key that is not one of :data:`CONFIG_KEYS` (a typo such as
            ``exogeneous``), a required key missing, or a value of the wrong kind (a text
            where a list or a mapping belongs); the message names the file and the key.
    """

    def fail(problem: str) -> None:
        raise DatasetConfigError(
            f"dataset config {origin!r}: {problem} (compare it with conf/datasets/"
            "aus_retail.yml; docs/data_pipeline.md lists every key)"
        )

    for path in _MAPPING_KEYS:
        value = _value_at(raw, path)
        if value is not None and not isinstance(value, Mapping):
            fail(f"`{path}` must be a mapping (`key: value` lines), not {value!r}")
    for section, allowed in CONFIG_KEYS.items():
        part = _value_at(raw, section) if section else raw
        unknown = sorted(str(k) for k in (part or {}) if str(k) not in allowed)
        if unknown:
            where = f"`{section}` has" if section else "has"
            fail(f"{where} unknown key(s) {unknown}; the keys are {', '.join(allowed)}")
    for path in _LIST_KEYS:
        value = _value_at(raw, path)
        if value is not None and not isinstance(value, list):
            fail(f"`{path}` must be a list such as [a, b], not {value!r}")
    for path in _REQUIRED_KEYS:
        if _value_at(raw, path) is None:
            fail(f"`{path}` is missing")


def _value_at(raw: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path such as ``month.format`` (None where any part is absent)."""
    value: Any = raw
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _load_raw(name_or_path: str, seen: tuple[str, ...]) -> dict[str, Any]:
    if name_or_path in seen:
        raise DatasetConfigError(f"dataset configs extend each other in a loop: {seen}")
    text = _read_config_text(name_or_path)
    raw = yaml.safe_load(text) or {}
    if not isinstance(raw, dict):
        raise DatasetConfigError(f"dataset config {name_or_path!r} is not a YAML mapping")
    base_name = raw.pop("extends", None)
    if base_name is None:
        return raw
    if _looks_like_path(name_or_path) and _looks_like_path(str(base_name)):
        base_name = str(Path(name_or_path).parent / str(base_name))
    return _deep_merge(_load_raw(str(base_name), (*seen, name_or_path)), raw)


def _read_config_text(name_or_path: str) -> str:
    if _looks_like_path(name_or_path):
        path = Path(name_or_path)
        if not path.is_file():
            raise DatasetConfigError(f"dataset config file {path} does not exist")
        return path.read_text(encoding="utf-8")
    resource = resources.files("demand_forecasting").joinpath(f"{_PACKAGE_CONF}/{name_or_path}.yml")
    if not resource.is_file():
        raise DatasetConfigError(
            f"unknown dataset {name_or_path!r}: the package ships "
            f"{', '.join(available_datasets())}; pass one of these or the path of a YAML file"
        )
    return resource.read_text(encoding="utf-8")


def _looks_like_path(text: str) -> bool:
    return text.endswith((".yml", ".yaml")) or "/" in text


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _from_mapping(raw: Mapping[str, Any]) -> DatasetConfig:
    segment = raw.get("segment") or {}
    groups = tuple(
        GroupedKey(
            name=str(name),
            source=str(spec["from"]),
            members={str(g): tuple(str(v) for v in vs) for g, vs in spec["members"].items()},
        )
        for name, spec in (segment.get("groups") or {}).items()
    )
    return DatasetConfig(
        name=str(raw["name"]),
        description=str(raw.get("description", "")),
        file_prefix=str(raw.get("file_prefix", raw["name"])),
        rename=tuple((str(k), str(v)) for k, v in raw["rename"].items()),
        series_keys=tuple(str(k) for k in raw["series_keys"]),
        series_id=str(raw["series_id"]) if raw.get("series_id") else None,
        month_column=str(raw["month"]["column"]),
        month_format=str(raw["month"]["format"]),
        target=str(raw["target"]),
        exogenous=tuple(str(c) for c in raw.get("exogenous") or ()),
        planned=tuple(str(c) for c in raw.get("planned") or ()),
        segment_keys=tuple(str(k) for k in segment["keys"]),
        known_values={
            str(k): tuple(str(v) for v in vs)
            for k, vs in (segment.get("known_values") or {}).items()
        },
        groups=groups,
        source=_source(raw.get("source")),
    )


def _source(raw: Mapping[str, Any] | None) -> PackageCsvSource | SyntheticSource | None:
    if not raw:
        return None
    if "package_csv" in raw:
        spec = raw["package_csv"]
        include = {
            str(k): tuple(str(v) for v in vs) for k, vs in (spec.get("include") or {}).items()
        }
        return PackageCsvSource(str(spec["package"]), str(spec["resource"]), include)
    if "synthetic" in raw:
        spec = raw["synthetic"]
        return SyntheticSource(
            series=int(spec["series"]),
            seed=int(spec["seed"]),
            first_month=parse_month(str(spec["first_month"])),
            last_month=parse_month(str(spec["last_month"])),
        )
    raise DatasetConfigError(f"source {dict(raw)} is neither package_csv nor synthetic")
