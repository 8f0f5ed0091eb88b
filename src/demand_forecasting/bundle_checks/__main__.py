"""``python -m demand_forecasting.bundle_checks``: check the bundle and pipelines offline."""

import sys

from demand_forecasting.bundle_checks.cli import run

sys.exit(run())
