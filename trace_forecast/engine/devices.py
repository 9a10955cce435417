"""Where training and inference run: one reading of the ``device`` parameter for every task."""

from __future__ import annotations

import torch


def resolve_accelerator(device: str) -> tuple[str, str]:
    """``(accelerator, default precision)`` for ``"auto"``, ``"cpu"``, ``"cuda"``/``"gpu"``."""
    device = device.lower()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device in ("cuda", "gpu"):
        if not torch.cuda.is_available():
            raise ValueError("device='cuda' was requested but no CUDA GPU is available")
        return "gpu", "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if device == "cpu":
        return "cpu", "32-true"
    raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")


def torch_device(device: str) -> torch.device:
    """The torch device a ``device`` parameter (``"auto"``, ``"cpu"``, ``"cuda"``) resolves to."""
    accelerator, _ = resolve_accelerator(device)
    return torch.device("cuda" if accelerator == "gpu" else "cpu")
