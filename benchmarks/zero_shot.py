"""Zero-shot sanity of a backbone on ETTh1's test split (model card figures).

- Masked reconstruction: 30 % of each window's patches hidden (fixed seed); MSE on the
  hidden steps in each window's RevIN space (statistics of the visible steps), against
  linear interpolation and the visible-window mean (both in the same space).
- Forecasting by tail masking (MOMENT's zero-shot recipe): the 96 steps to forecast are
  hidden at the end of a 512-step window (416 steps of context) and read back from the
  reconstruction; MSE/MAE on train-standardised values over every test window and
  channel, against seasonal naive (period 24, lookback 512).
- The same architecture with random weights, for both.

``python -m benchmarks.zero_shot [--backbone DIR] [--stride 1] [--out results.json]``
"""

from __future__ import annotations

import numpy as np
import torch

from benchmarks.harness import Record, channel_windows, main
from trace_forecast.backbone import MomentBackbone, load_backbone
from trace_forecast.datasets import load_etth1, standard_split
from trace_forecast.metrics import mae, mse, seasonal_naive
from trace_forecast.network import random_patch_mask

LOOKBACK, HORIZON = 512, 96


def test_windows(stride: int) -> tuple[np.ndarray, np.ndarray]:
    return channel_windows(standard_split(load_etth1(), LOOKBACK).test, LOOKBACK, HORIZON, stride)


@torch.no_grad()
def masked_reconstruction(model: MomentBackbone, windows: np.ndarray, batch: int = 256) -> dict[str, float]:
    g = torch.Generator().manual_seed(0)
    errs = {"model": [], "interpolation": [], "window_mean": []}
    for i in range(0, len(windows), batch):
        x = torch.from_numpy(windows[i : i + batch])[:, None, :]
        ones = torch.ones(len(x), LOOKBACK)
        mask = random_patch_mask(ones, 8, 0.3, g)
        enc = model.encode(x, ones, mask)
        rec = model.head(enc.tokens)[:, 0]
        target = model.normalizer.normalize(x, enc.mean, enc.std)[:, 0]
        hidden = mask == 0
        errs["model"].append(((rec - target) ** 2)[hidden].numpy())
        errs["window_mean"].append((target ** 2)[hidden].numpy())  # visible mean is 0 in this space
        t = np.arange(LOOKBACK)
        for row, m in zip(target.numpy(), mask.numpy().astype(bool), strict=True):
            interp = np.interp(t, t[m], row[m])
            errs["interpolation"].append(((interp - row) ** 2)[~m])
    return {k: float(np.mean(np.concatenate(v))) for k, v in errs.items()}


@torch.no_grad()
def tail_forecast(model: MomentBackbone, histories: np.ndarray, batch: int = 256) -> np.ndarray:
    out = []
    ctx = LOOKBACK - HORIZON
    for i in range(0, len(histories), batch):
        h = torch.from_numpy(histories[i : i + batch, -ctx:])
        x = torch.cat([h, torch.zeros(len(h), HORIZON)], dim=1)[:, None, :]
        input_mask = torch.ones(len(h), LOOKBACK)
        mask = input_mask.clone()
        mask[:, ctx:] = 0
        out.append(model.reconstruct(x, input_mask, mask)[:, 0, ctx:].numpy())
    return np.concatenate(out)


def evaluate(model: MomentBackbone, histories: np.ndarray, futures: np.ndarray) -> dict[str, float]:
    pred = tail_forecast(model.eval(), histories)
    rec = masked_reconstruction(model, histories)
    return {"masked_recon_mse": rec["model"], "forecast_mse": mse(futures, pred), "forecast_mae": mae(futures, pred),
            "interpolation_recon_mse": rec["interpolation"], "window_mean_recon_mse": rec["window_mean"]}


KEY = ("method",)


def options(parser) -> None:
    parser.add_argument("--backbone", default=None, help="checkpoint folder (default: embedded)")
    parser.add_argument("--stride", type=int, default=1, help="stride between test windows")


def run(args, record: Record) -> None:
    histories, futures = test_windows(args.stride)
    pretrained = load_backbone(args.backbone)
    torch.manual_seed(0)
    random = MomentBackbone(pretrained.config).eval()
    naive = seasonal_naive(histories, HORIZON, 24)
    record.protocol["windows"] = len(histories)
    record.add({"method": "pretrained", **evaluate(pretrained, histories, futures)})
    record.add({"method": "random_weights", **evaluate(random, histories, futures)})
    record.add({"method": "seasonal_naive", "forecast_mse": mse(futures, naive), "forecast_mae": mae(futures, naive)})


if __name__ == "__main__":
    main(__name__)
