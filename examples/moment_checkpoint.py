"""Use a MOMENT checkpoint from a local folder (offline).

Any folder in MOMENT's layout (``config.json`` + ``model.safetensors``, as on the
Hugging Face hub for ``AutonLab/MOMENT-1-small/base/large``) is a valid ``backbone``. This
script writes one itself -- the embedded backbone, saved in MOMENT's layout -- then
fine-tunes from the folder and checks that it forecasts exactly as the embedded default.

For a real MOMENT checkpoint, download it once (the ``hf`` command comes with
huggingface_hub) and pass the folder, or pass the hub id and let the cache serve it::

    hf download AutonLab/MOMENT-1-small --local-dir MOMENT-1-small
    TraceForecaster(backbone="MOMENT-1-small")           # local folder
    TraceForecaster(backbone="AutonLab/MOMENT-1-small")  # hub id (HF_HUB_OFFLINE=1: cache only)

Run: ``python examples/moment_checkpoint.py`` (writes ``moment-checkpoint/``; about 20 s).
"""

import json
from pathlib import Path

import numpy as np
from sktime.datasets import load_airline

from trace_forecast import TraceForecaster
from trace_forecast.backbone import load_backbone, save_backbone


def main() -> Path:
    folder = save_backbone(load_backbone(), "moment-checkpoint", moment_compatible=True)
    config = json.loads((folder / "config.json").read_text())
    print(f"wrote {folder}/: {sorted(p.name for p in folder.iterdir())}")
    print(f"  d_model {config['d_model']}, {config['t5_config']['num_layers']} T5 blocks, "
          f"context {config['seq_len']}, patches of {config['patch_len']}")

    y = load_airline().astype(float)
    from_folder = TraceForecaster(backbone=str(folder), random_state=0).fit(y, fh=list(range(1, 13)))
    embedded = TraceForecaster(random_state=0).fit(y, fh=list(range(1, 13)))
    same = np.allclose(from_folder.predict().to_numpy(), embedded.predict().to_numpy(), rtol=1e-5, atol=1e-5)
    print(f"forecast from the folder equals the embedded default's: {same}")
    print(from_folder.predict().round(1).head(3).to_string())
    return folder


if __name__ == "__main__":
    main()
