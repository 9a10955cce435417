"""Module selection: Gated DSIC (importance by Monte-Carlo gate masking) and its schedule."""

from trace_forecast.selection.gated_dsic import GatedDSIC
from trace_forecast.selection.schedule import KeepSchedule

__all__ = ["GatedDSIC", "KeepSchedule"]
