"""What every front end sets up before a fit, written once: the pretrained backbone,
checked against the context it will read, and the network spec built from the registered
parameters (:mod:`trace_forecast.parameters`; a missing one takes its default)."""

from __future__ import annotations

from typing import Any

from trace_forecast.backbone import MomentBackbone, shared_backbone
from trace_forecast.heads import resolve_future_patches
from trace_forecast.adapters import resolve_targets
from trace_forecast.parameters import check_context_length, default
from trace_forecast.spec import NetworkSpec


def backbone_for(checkpoint, context_length: int, name: str = "context_length") -> MomentBackbone:
    """The (cached) pretrained backbone of ``checkpoint``, after checking that ``context_length``
    (spelled ``name`` in the caller's API) is a multiple of its patch length within its context."""
    backbone = shared_backbone(checkpoint)
    check_context_length(context_length, backbone.patch_len, backbone.config.seq_len, name)
    return backbone


def network_spec(task: str, patch_len: int, horizon: int = 0, *, context_length: int, **params: Any) -> NetworkSpec:
    """The :class:`NetworkSpec` of a fit: ``task`` ("forecast" or "reconstruction"), and the
    parameters ``context_length``, ``adapter``, ``head``, ``lora_rank``, ``lora_targets``,
    ``temporal_map`` and ``future_patches`` as the user gave them (others are ignored: a
    front end may pass all of its parameters)."""
    value = lambda name: params.get(name, default(name))  # noqa: E731
    spec = dict(task=task, context_length=context_length, adapter=value("adapter"), lora_rank=value("lora_rank"),
                lora_targets=resolve_targets(value("lora_targets")))
    if task == "forecast":
        spec.update(horizon=horizon, head=value("head"), temporal_map=value("temporal_map"),
                    future_patches=resolve_future_patches(value("future_patches"), horizon, context_length,
                                                          patch_len))
    return NetworkSpec(**spec)
