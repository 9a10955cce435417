"""MOMENT-compatible backbone: architecture, configuration and checkpoint I/O."""

from trace_forecast.backbone.config import MomentConfig, moment_config, t5_config_dict
from trace_forecast.backbone.io import load_backbone, save_backbone, shared_backbone
from trace_forecast.backbone.moment import MomentBackbone

__all__ = [
    "MomentBackbone",
    "MomentConfig",
    "load_backbone",
    "moment_config",
    "save_backbone",
    "shared_backbone",
    "t5_config_dict",
]
