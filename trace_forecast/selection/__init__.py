"""Module selection: Gated DSIC (importance by Monte-Carlo gate masking) and its schedule."""

from trace_forecast.selection.gated_dsic import GatedDSIC, history_frame
from trace_forecast.selection.schedule import KeepSchedule

__all__ = ["GatedDSIC", "KeepSchedule", "history_frame"]
