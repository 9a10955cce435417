"""Closed-form (ridge) initialisation of a head's output layer before fine-tuning.

Linear probing first, then fine-tuning (LP-FT, Kumar et al., ICLR 2022) keeps the
pretrained features from being distorted by a random head, and on a CPU it replaces
many epochs of gradient steps on the head by one least-squares solve over features of
the frozen backbone. Used for any head whose feature width is at most
``MAX_RIDGE_FEATURES`` (TRACE's temporal map always; MOMENT's linear probe for small
backbones), so baselines get the same start.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from trace_forecast.losses import TARGET_CLIP

MAX_RIDGE_FEATURES = 16384


@torch.no_grad()
def ridge_init(network, dataset: Dataset, alpha: float = 1.0, batch_size: int = 256) -> bool:
    """Solve the head's output layer by ridge regression on ``dataset``; False if skipped.

    Targets are the future values in each window's RevIN space (as the training loss
    sees them); ``alpha`` is relative to the mean feature variance.
    """
    head = network.forecast_head
    layer = head.output_layer
    if layer.in_features > MAX_RIDGE_FEATURES or len(dataset) == 0:
        return False
    was_training = network.training
    network.eval()
    xtx = torch.zeros(layer.in_features + 1, layer.in_features + 1, dtype=torch.float64)
    xty = torch.zeros(layer.in_features + 1, layer.out_features, dtype=torch.float64)
    for x, input_mask, y in DataLoader(dataset, batch_size=batch_size):
        enc = network.backbone.encode(x, input_mask)
        feats = head.features(enc.tokens, input_mask)[:, 0].double()
        feats = torch.cat([feats, torch.ones(len(feats), 1, dtype=feats.dtype)], dim=1)
        target = ((y[:, 0] - enc.mean[:, 0]) / enc.std[:, 0]).clamp(-TARGET_CLIP, TARGET_CLIP).double()
        xtx += feats.T @ feats
        xty += feats.T @ target
    n_feat = layer.in_features
    scale = torch.diagonal(xtx)[:n_feat].mean().clamp_min(1e-8)
    reg = torch.eye(n_feat + 1, dtype=torch.float64) * alpha * scale
    reg[-1, -1] = 0.0  # the bias is not shrunk
    solution = torch.linalg.solve(xtx + reg, xty)
    layer.weight.copy_(solution[:-1].T.to(layer.weight.dtype))
    layer.bias.copy_(solution[-1].to(layer.bias.dtype))
    network.train(was_training)
    return True
