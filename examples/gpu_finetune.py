"""Fine-tune on a CUDA GPU (bf16 mixed precision), and compare with the CPU fit.

``device="auto"`` (the default) already trains on a GPU when one is present; this script
asks for it explicitly and fits ETTh1 with more training than the CPU default (all
windows, 3 epochs), then scores both on the first 2,000 test windows. Without a CUDA GPU
it says so and exits cleanly.

Run: ``python examples/gpu_finetune.py``.
"""

import sys
import time

import numpy as np
import torch

from trace_forecast import TraceForecaster
from trace_forecast.datasets import load_etth1, rolling_windows, standard_split

HORIZON = 96


def score(forecaster, test: np.ndarray) -> float:
    histories, futures = rolling_windows(test, 512, HORIZON)
    histories, futures = histories[:2000], futures[:2000]
    return float(np.mean((forecaster.predict_histories(list(histories)) - futures) ** 2))


def main() -> dict | None:
    if not torch.cuda.is_available():
        print("no CUDA GPU here: skipping (device='auto' trains on the CPU)")
        return None
    split = standard_split(load_etth1()[["OT"]], lookback=512)  # train-standardised
    train, test = split.train, split.test["OT"].to_numpy()
    results = {}
    for device, settings in (("cuda", dict(max_windows=None, max_epochs=3)), ("cpu", {})):
        start = time.perf_counter()
        forecaster = TraceForecaster(device=device, random_state=0, **settings).fit(train, fh=list(range(1, HORIZON + 1)))
        results[device] = {"fit seconds": time.perf_counter() - start, "test MSE": score(forecaster, test)}
        print(f"{device}: fit {results[device]['fit seconds']:.1f} s, MSE {results[device]['test MSE']:.3f} "
              f"({torch.cuda.get_device_name(0) if device == 'cuda' else 'CPU default recipe'})")
    return results


if __name__ == "__main__":
    sys.exit(0 if main() is not None or not torch.cuda.is_available() else 1)
