"""Load and save MOMENT-layout checkpoints (``config.json`` + ``model.safetensors``).

A backbone can come from the embedded default (``None``), another backbone shipped in the
package by its name (:data:`EMBEDDED`), a local folder, or a Hugging Face hub id such as
``AutonLab/MOMENT-1-large`` (downloaded with ``huggingface_hub``, which honours
``HF_HUB_OFFLINE`` and its cache).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from trace_forecast.backbone.config import MomentConfig
from trace_forecast.backbone.embedding import sinusoidal_positions
from trace_forecast.backbone.moment import MomentBackbone
from trace_forecast.errors import CheckpointError
from trace_forecast.rng import GLOBAL_RNG_LOCK

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
EMBEDDED_DIR = WEIGHTS_DIR / "trace-moment-tiny"  # the default (``backbone=None``): v3
# Backbones shipped in the package, by the name ``backbone=`` takes. A name is looked up
# before any folder of that name: "trace-moment-tiny-v4" is a snapshot of the v4 pretraining
# campaign, opt-in while the default stays v3 (docs/choosing_a_backbone.md, docs/model_card.md).
EMBEDDED = {"trace-moment-tiny": EMBEDDED_DIR, "trace-moment-tiny-v4": WEIGHTS_DIR / "trace-moment-tiny-v4"}
POSITION_KEY = "patch_embedding.position_embedding.pe"
# Keys a MOMENT checkpoint may carry that this backbone recomputes or never uses.
OPTIONAL_KEYS = ("encoder.embed_tokens.weight",)
_HUB_ID = re.compile(r"^[\w.\-]+/[\w.\-]+$")


def resolve_checkpoint(source: str | Path | None) -> Path:
    """The local folder holding a checkpoint: embedded (``None`` or a name in
    :data:`EMBEDDED`), a folder, or a hub download."""
    if source is None or (isinstance(source, str) and source in EMBEDDED):
        folder = EMBEDDED_DIR if source is None else EMBEDDED[source]  # a benchmark may point the default elsewhere
        if not (folder / WEIGHTS_NAME).is_file():
            raise CheckpointError(
                f"the embedded backbone is missing from the installation ({folder}); "
                "reinstall trace-forecast or pass backbone=<folder or hub id>."
            )
        return folder
    path = Path(source).expanduser()
    if path.exists():
        if not path.is_dir():
            raise CheckpointError(f"backbone {str(source)!r} is a file; expected a checkpoint folder.")
        return path
    if isinstance(source, str) and _HUB_ID.match(source) and not source.startswith((".", "/")):
        return _download(source)
    raise CheckpointError(f"backbone folder {str(source)!r} does not exist.")


def _download(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
    )
    from huggingface_hub.utils import validate_repo_id

    try:  # before any request: a malformed id never reaches the network
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise CheckpointError(f"backbone {repo_id!r} is neither an existing folder nor a valid hub id: {err}") from None
    try:
        folder = snapshot_download(repo_id, allow_patterns=[CONFIG_NAME, WEIGHTS_NAME])
    except LocalEntryNotFoundError as err:
        raise CheckpointError(
            f"checkpoint {repo_id!r} is not in the local Hugging Face cache and cannot be "
            "downloaded (offline, HF_HUB_OFFLINE=1, or no network). Download it once with "
            f"`hf download {repo_id}` (the command huggingface_hub installs) while online, "
            "or pass a local folder."
        ) from err
    except HfHubHTTPError as err:
        raise CheckpointError(f"could not download checkpoint {repo_id!r}: {err}") from err
    return Path(folder)


def load_config(folder: Path) -> MomentConfig:
    """Read and validate ``folder/config.json``."""
    cfg_path = folder / CONFIG_NAME
    if not cfg_path.is_file():
        raise CheckpointError(f"{folder} is not a MOMENT checkpoint: no {CONFIG_NAME}.")
    return MomentConfig.from_json(cfg_path)


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    path = folder / WEIGHTS_NAME
    if not path.is_file():
        raise CheckpointError(f"{folder} is not a MOMENT checkpoint: no {WEIGHTS_NAME}.")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path} is corrupted or truncated: {err}") from err


def load_state(model: MomentBackbone, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy ``state`` into ``model`` and fail loudly on any mismatch."""
    state = dict(state)
    state.pop(POSITION_KEY, None)
    expected = model.state_dict()
    unexpected = sorted(set(state) - set(expected))
    missing = sorted(k for k in set(expected) - set(state) if k not in OPTIONAL_KEYS)
    wrong_shape = sorted(
        k for k in set(state) & set(expected) if tuple(state[k].shape) != tuple(expected[k].shape)
    )
    if unexpected or missing or wrong_shape:
        raise CheckpointError(
            f"the weights in {source} do not match its config.json: "
            f"missing={missing[:5]}, unexpected={unexpected[:5]}, wrong shape={wrong_shape[:5]}"
        )
    model.load_state_dict(state, strict=False)


def load_backbone(source: str | Path | None = None) -> MomentBackbone:
    """Load a MOMENT-layout backbone (``None`` = embedded default) in eval mode, float32."""
    folder = resolve_checkpoint(source)
    config = load_config(folder)
    # The random initial weights are overwritten by the checkpoint's: drawing them must not move
    # the global random state, or a process's first fit (which loads the backbone) would draw
    # other reconstruction masks than its later fits (which find it cached).
    with GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):
        model = MomentBackbone(config)
    load_state(model, _read_weights(folder), str(folder))
    return model.eval()


def save_backbone(model: MomentBackbone, folder: str | Path, moment_compatible: bool = True) -> Path:
    """Write ``config.json`` and ``model.safetensors`` in MOMENT's layout.

    With ``moment_compatible`` the sinusoidal position table is written too, since
    MOMENT's own loader expects it; the embedded default omits it to stay small.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.config.to_json(folder / CONFIG_NAME)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if moment_compatible and model.patch_embedding.position_embedding is not None:
        state[POSITION_KEY] = sinusoidal_positions(5000, model.config.d_model)
    save_file(state, str(folder / WEIGHTS_NAME))
    return folder


@functools.lru_cache(maxsize=4)
def _cached(source: str | None, mtime: float) -> MomentBackbone:
    return load_backbone(source)


def shared_backbone(source: str | Path | None = None) -> MomentBackbone:
    """A cached, read-only backbone for estimators that copy it before adapting.

    Re-fitting (cross-validation, grid search) then loads the weights once per process.
    The cache key includes the weights file's modification time.
    """
    folder = resolve_checkpoint(source)
    weights = folder / WEIGHTS_NAME
    mtime = weights.stat().st_mtime if weights.is_file() else 0.0
    return _cached(None if source is None else str(folder), mtime)
