"""Local state layout: every file the local platform writes lives under one folder.

By default that folder is ``.local/`` beside the bundle's ``databricks.yml`` (found by walking
up from the working directory); ``DEMAND_FORECASTING_HOME`` overrides it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

STATE_DIR_ENV = "DEMAND_FORECASTING_HOME"
BUNDLE_FILE = "databricks.yml"


def find_bundle_root(start: Path | None = None) -> Path | None:
    """Return the nearest folder at or above ``start`` holding ``databricks.yml``, if any."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / BUNDLE_FILE).is_file():
            return folder
    return None


def default_state_dir(start: Path | None = None) -> Path:
    """The local state folder: ``$DEMAND_FORECASTING_HOME`` or ``<bundle root>/.local``."""
    override = os.environ.get(STATE_DIR_ENV)
    if override:
        return Path(override).expanduser().resolve()
    root = find_bundle_root(start) or (start or Path.cwd()).resolve()
    return root / ".local"


@dataclass(frozen=True)
class LocalLayout:
    """The sub-folders of the local state folder, one per kind of state."""

    root: Path

    @property
    def warehouse(self) -> Path:
        """Delta tables, as ``warehouse/<catalog>/<schema>/<table>``."""
        return self.root / "warehouse"

    @property
    def volumes(self) -> Path:
        """Unity Catalog volumes, as ``volumes/<catalog>/<schema>/<volume>``."""
        return self.root / "volumes"

    @property
    def mlflow(self) -> Path:
        """MLflow sqlite database and artifact store."""
        return self.root / "mlflow"

    @property
    def runs(self) -> Path:
        """Run records written by the local runner."""
        return self.root / "runs"

    @property
    def spark(self) -> Path:
        """Spark's own scratch space (local dirs, warehouse of the default catalog)."""
        return self.root / "spark"


def volume_path(catalog: str, schema: str, volume: str, *parts: str, state_dir: Path | None) -> str:
    """A path inside a Unity Catalog volume, with no Spark and no MLflow needed.

    ``/Volumes/<catalog>/<schema>/<volume>/...`` on Databricks (``state_dir`` None); the same
    layout under the local state folder's ``volumes/`` otherwise.
    """
    if state_dir is None:
        return str(PurePosixPath("/Volumes", catalog, schema, volume).joinpath(*parts))
    return str(LocalLayout(state_dir).volumes.joinpath(catalog, schema, volume, *parts))
