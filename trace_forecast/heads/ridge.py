"""Closed-form (ridge) initialisation of a head's output layer before fine-tuning.

Linear probing first, then fine-tuning (LP-FT, Kumar et al., ICLR 2022) keeps the
pretrained features from being distorted by a random head, and on a CPU it replaces
many epochs of gradient steps on the head by one least-squares solve over features of
the frozen backbone. Used for any head whose feature width is at most
``MAX_RIDGE_FEATURES`` (TRACE's temporal map always; MOMENT's linear probe for small
backbones), so baselines get the same start.

Two choices make the solve a good start on any amount of data (``docs/design.md``,
"What the solve shrinks toward, and on which windows"):

- **A choice of shrinkage target.** A head may offer a ``prior_weight()``: for TRACE's
  reconstruction head, the map that reads the backbone's own prediction of the hidden
  future patches (its zero-shot forecast). Shrunk toward it, a fit on few windows
  stays near the pretrained model's forecast; shrunk toward zero (the usual ridge), it
  stays near each window's mean. Given validation windows (the later ones), the
  target that fits them better is kept; without them (the Darts module), zero.
- **The validation windows then join the solve**, so the head also learns from the
  most recent data.

Everything is computed from streamed normal-equation sums (``X'X``, ``X'Y``, ``Y'Y``),
which data-parallel ranks all-reduce; scikit-learn's ``Ridge`` would need the feature
matrix in memory and has no prior mean. Choosing the penalty on the validation windows
too was measured and rejected (``benchmarks/head_start.py``, ``docs/design.md``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from trace_forecast.losses import TARGET_CLIP

MAX_RIDGE_FEATURES = 16384
# Training windows whose features solve the head (forward passes only, so more than training sees).
RIDGE_WINDOWS = 8192
# Ridge penalty, relative to the mean feature energy (:func:`penalty_scale`).
DEFAULT_ALPHA = 1.0


@dataclass
class RidgeStatistics:
    """Normal-equation sums over windows (float64, CPU). ``xtx [n+1, n+1]`` and
    ``xty [n+1, H]`` carry a bias column last; ``yty [H]`` is the targets' sum of squares."""

    xtx: torch.Tensor
    xty: torch.Tensor
    yty: torch.Tensor

    @property
    def windows(self) -> int:
        return int(round(float(self.xtx[-1, -1])))

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.xtx, self.xty, self.yty

    def __add__(self, other: RidgeStatistics) -> RidgeStatistics:
        return RidgeStatistics(*(a + b for a, b in zip(self.tensors(), other.tensors(), strict=True)))


def ridge_applicable(network) -> bool:
    """Whether the head's output layer is small enough for the closed-form solve."""
    head = network.forecast_head
    return head is not None and head.output_layer.in_features <= MAX_RIDGE_FEATURES


@torch.no_grad()
def ridge_statistics(network, batches: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> RidgeStatistics:
    """Normal-equation sums over ``batches`` (see :class:`RidgeStatistics`).

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
    yty = torch.zeros(layer.out_features, dtype=torch.float64)
    for x, input_mask, y in batches:
        feats, mean, std = network.forecast_features(x, input_mask)
        feats = feats[:, 0].double()
        feats = torch.cat([feats, torch.ones(len(feats), 1, dtype=feats.dtype, device=feats.device)], dim=1)
        target = ((y[:, 0] - mean[:, 0]) / std[:, 0]).clamp(-TARGET_CLIP, TARGET_CLIP).double()
        xtx += (feats.T @ feats).cpu()
        xty += (feats.T @ target).cpu()
        yty += (target * target).sum(0).cpu()
    network.train(was_training)
    return RidgeStatistics(xtx, xty, yty)


def head_prior(network) -> torch.Tensor | None:
    """The output layer's prior weight ``[H, n]`` (``None``: shrink toward zero)."""
    prior = getattr(network.forecast_head, "prior_weight", None)
    return None if prior is None else prior().detach().double().cpu()


def _centred(stats: RidgeStatistics):
    xtx, xty = stats.xtx.double().cpu(), stats.xty.double().cpu()
    count = xtx[-1, -1].clamp_min(1.0)
    mean_x, mean_y = xtx[:-1, -1] / count, xty[-1] / count
    sxx = xtx[:-1, :-1] - count * torch.outer(mean_x, mean_x)
    sxy = xty[:-1] - count * torch.outer(mean_x, mean_y)
    return sxx, sxy, mean_x, mean_y


def penalty_scale(stats: RidgeStatistics) -> torch.Tensor:
    """The unit of the ridge penalty: the mean energy (sum of squares over windows) of the
    features that are ever non-zero. Features that are zero in every window (map inputs
    that are padding throughout a short series) are left out: counted in, they would
    dilute the penalty exactly where the windows are fewest. (Energy, not variance: for
    features with a large common offset, such as MOMENT's tokens under linear probing,
    the variance would make the penalty far weaker: linear probing on ETTh1, H = 96, every
    test window, scored MSE 0.414 with it against 0.384.)"""
    energy = torch.diagonal(stats.xtx).double()[:-1].clamp_min(0.0)
    used = energy > 0
    return energy[used].mean() if bool(used.any()) else energy.new_tensor(1e-12)


def squared_error(stats: RidgeStatistics, weight: torch.Tensor, bias: torch.Tensor) -> float:
    """Mean squared error of ``x @ weight.T + bias`` over the windows summed in ``stats``."""
    xtx, xty, yty = (t.double().cpu() for t in stats.tensors())
    full = torch.cat([weight.T, bias[None, :]], dim=0)  # [n+1, H]
    total = yty.sum() - 2 * (full * xty).sum() + (full * (xtx @ full)).sum()
    return float(total.clamp_min(0.0) / (xtx[-1, -1].clamp_min(1.0) * full.shape[1]))


@torch.no_grad()
def ridge_solution(stats: RidgeStatistics, target: torch.Tensor | None = None,
                   alpha: float = DEFAULT_ALPHA) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weight [H, n], bias [H])``: the ridge solution of ``stats`` shrunk toward
    ``target`` (``[H, n]``; ``None``: zero). ``alpha`` is relative to the mean energy of
    the features (:func:`penalty_scale`); the bias is not shrunk."""
    sxx, sxy, mean_x, mean_y = _centred(stats)
    w0 = None if target is None else target.T.double()
    r_xy = sxy if w0 is None else sxy - sxx @ w0  # solve for the departure from the target
    penalty = alpha * penalty_scale(stats).cpu() * torch.eye(len(sxx), dtype=sxx.dtype)
    weight = torch.linalg.solve(sxx + penalty, r_xy)
    if w0 is not None:
        weight = weight + w0
    return weight.T, mean_y - mean_x @ weight


@torch.no_grad()
def ridge_solve(network, stats: RidgeStatistics, alpha: float = DEFAULT_ALPHA,
                validation: RidgeStatistics | None = None) -> bool:
    """Set the head's output layer to the ridge solution; returns whether it was
    shrunk toward the head's prior.

    Without ``validation`` the target is zero. With it (the later windows), the target
    (prior or zero) whose training-window solution fits them better is kept, and the
    system is solved again on training and validation windows together, so the head also
    learns from the most recent data.
    """
    prior = head_prior(network)
    use_prior = False
    if validation is not None and validation.windows > 0:
        if prior is not None:
            use_prior = (squared_error(validation, *ridge_solution(stats, prior, alpha))
                         < squared_error(validation, *ridge_solution(stats, None, alpha)))
        stats = stats + validation
    set_output_layer(network, *ridge_solution(stats, prior if use_prior else None, alpha))
    return use_prior


@torch.no_grad()
def set_output_layer(network, weight: torch.Tensor, bias: torch.Tensor) -> None:
    """Copy a solution ``(weight [H, n], bias [H])`` into the head's output layer."""
    layer = network.forecast_head.output_layer
    layer.weight.copy_(weight.to(layer.weight.dtype))
    layer.bias.copy_(bias.to(layer.bias.dtype))
