"""Compact persistence of an adapted network: only what training changed.

A fitted estimator's network is its frozen backbone plus a few trainable tensors.
:func:`adapted_state` keeps the trainable tensors and the buffers (gate masks), and
:func:`restore_network` rebuilds the network from the backbone checkpoint, so pickles
and ``save`` files hold the adapter and head only (kilobytes, not the backbone).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:  # the network (transformers, PEFT) loads when a fitted estimator is restored
    from trace_forecast.network import NetworkSpec, TraceNetwork


def adapted_state(network: TraceNetwork, backbone_source: Any) -> dict[str, Any]:
    """The spec, the trainable tensors, the forecasting head's output layer (set by the fit
    even when nothing trains: a zero-shot map) and the buffers of ``network``."""
    trainable = [n for n, p in network.named_parameters() if p.requires_grad]
    buffers = [n for n, _ in network.named_buffers() if n.endswith(".mask")]
    head = getattr(getattr(network, "forecast_head", None), "output_layer", None)
    head_names = [] if head is None else [n for n, p in network.named_parameters()
                                          if any(p is q for q in head.parameters())]
    state = network.state_dict()
    names = list(dict.fromkeys((*trainable, *head_names, *buffers)))
    return {
        "backbone": None if backbone_source is None else str(backbone_source),
        "spec": network.spec,
        "trainable": trainable,
        "tensors": {k: state[k].detach().cpu().clone() for k in names},
    }


def restore_network(saved: dict[str, Any]) -> TraceNetwork:
    """Rebuild a network saved by :func:`adapted_state` (loads the backbone checkpoint)."""
    from trace_forecast.backbone import shared_backbone
    from trace_forecast.network import build_network

    spec: NetworkSpec = saved["spec"]
    network = build_network(shared_backbone(saved["backbone"]), spec)
    own = dict(network.state_dict())
    unknown = [k for k in saved["tensors"] if k not in own]
    if unknown:
        raise ValueError(f"saved adapter does not fit the backbone: unknown tensors {unknown[:3]}")
    network.load_state_dict(saved["tensors"], strict=False)
    keep = set(saved["trainable"])
    for name, p in network.named_parameters():
        p.requires_grad_(name in keep)
    return network.eval()


class CompactNetworkState:
    """Mixin: pickle ``*network_`` attributes as adapted state, rebuild on load."""

    _network_attrs = ("network_", "pretrained_network_")

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for attr in self._network_attrs:
            if isinstance(state.get(attr), torch.nn.Module):
                state[attr] = {"__adapted_state__": adapted_state(state[attr], getattr(self, "backbone", None))}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for attr in self._network_attrs:
            value = state.get(attr)
            if isinstance(value, dict) and "__adapted_state__" in value:
                state[attr] = restore_network(value["__adapted_state__"])
        self.__dict__.update(state)
