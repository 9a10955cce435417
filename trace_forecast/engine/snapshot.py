"""A copy of what a fit may change in a network, and its restoration: the out-of-memory
retry starts again from it, and :class:`~trace_forecast.engine.recipe.BestOnValidation`
keeps the best state of a fit in it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from trace_forecast.network import TraceNetwork

Snapshot = dict[str, tuple[torch.Tensor, bool]]
CONSTANT_BUFFERS = ("position_embedding.pe",)  # fixed tables no fit changes (2.5 MB on the embedded backbone)


def training_snapshot(network: TraceNetwork) -> Snapshot:
    """What a fit may change: trainable parameters (and their flags) and buffers, on the CPU."""
    state = {n: (p.detach().cpu().clone(), p.requires_grad) for n, p in network.named_parameters()
             if p.requires_grad}
    state.update({n: (b.detach().cpu().clone(), False) for n, b in network.named_buffers()
                  if not n.endswith(CONSTANT_BUFFERS)})
    return state


def restore_snapshot(network: TraceNetwork, snapshot: Snapshot) -> None:
    """Copy ``snapshot`` back into ``network`` (values and trainable flags)."""
    params = dict(network.named_parameters())
    buffers = dict(network.named_buffers())
    with torch.no_grad():
        for name, (value, trainable) in snapshot.items():
            target = params.get(name, buffers.get(name))
            target.copy_(value.to(target.device))
            if name in params:
                params[name].requires_grad_(trainable)
