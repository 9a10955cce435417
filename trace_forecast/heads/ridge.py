"""Closed-form (ridge) initialisation of a head's output layer before fine-tuning.

Linear probing first, then fine-tuning (LP-FT, Kumar et al., ICLR 2022) keeps the
pretrained features from being distorted by a random head, and on a CPU it replaces
many epochs of gradient steps on the head by one least-squares solve over features of
the frozen backbone. Used for any head whose feature width is at most
``MAX_RIDGE_FEATURES`` (TRACE's temporal map always; MOMENT's linear probe for small
backbones), so baselines get the same start.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from trace_forecast.losses import TARGET_CLIP

MAX_RIDGE_FEATURES = 16384
# Training windows whose features solve the head (forward passes only, so more than training sees).
RIDGE_WINDOWS = 8192


def ridge_applicable(network) -> bool:
    """Whether the head's output layer is small enough for the closed-form solve."""
    head = network.forecast_head
    return head is not None and head.output_layer.in_features <= MAX_RIDGE_FEATURES


@torch.no_grad()
def ridge_statistics(network, batches: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]):
    """Normal-equation sums ``(X'X, X'Y)`` (float64, with a bias column) over ``batches``.

    Each batch is ``(x [B, 1, L], input_mask [B, L], y [B, 1, H])``; targets are the
    future values in each window's RevIN space, as the training loss sees them. The
    sums can be all-reduced across data-parallel ranks before :func:`ridge_solve`.
    """
    layer = network.forecast_head.output_layer
    was_training = network.training
    network.eval()
    n = layer.in_features + 1
    xtx = torch.zeros(n, n, dtype=torch.float64)
    xty = torch.zeros(n, layer.out_features, dtype=torch.float64)
    for x, input_mask, y in batches:
        feats, mean, std = network.forecast_features(x, input_mask)
        feats = feats[:, 0].double()
        feats = torch.cat([feats, torch.ones(len(feats), 1, dtype=feats.dtype, device=feats.device)], dim=1)
        target = ((y[:, 0] - mean[:, 0]) / std[:, 0]).clamp(-TARGET_CLIP, TARGET_CLIP).double()
        xtx += (feats.T @ feats).cpu()
        xty += (feats.T @ target).cpu()
    network.train(was_training)
    return xtx, xty


@torch.no_grad()
def ridge_solve(network, xtx: torch.Tensor, xty: torch.Tensor, alpha: float = 1.0) -> None:
    """Set the head's output layer to the ridge solution of the normal equations
    (``alpha`` is relative to the mean feature variance; the bias is not shrunk)."""
    layer = network.forecast_head.output_layer
    n_feat = layer.in_features
    xtx, xty = xtx.double().cpu(), xty.double().cpu()
    scale = torch.diagonal(xtx)[:n_feat].mean().clamp_min(1e-8)
    reg = torch.eye(n_feat + 1, dtype=torch.float64) * alpha * scale
    reg[-1, -1] = 0.0
    solution = torch.linalg.solve(xtx + reg, xty)
    layer.weight.copy_(solution[:-1].T.to(layer.weight.dtype))
    layer.bias.copy_(solution[-1].to(layer.bias.dtype))
