"""A Darts ``TraceModel`` fine-tune in its own process, for ``tests/test_resume.py``:
``python resume_darts_child.py WORK_DIR MODE KILL_AT OUT``. ``MODE`` is ``plain`` (no
checkpoints), ``fresh`` (Darts' ``save_checkpoints=True`` in ``WORK_DIR``) or ``resume``
(``TraceModel.load_from_checkpoint`` from ``WORK_DIR``, then ``fit``). The fit kills itself
with SIGKILL after training step ``KILL_AT`` (0: never) and otherwise writes its forecast to
``OUT`` (JSON)."""

from __future__ import annotations

import json
import sys
import warnings

from resume_child import KillAt  # the script's folder is on sys.path

PARAMS = {"input_chunk_length": 32, "output_chunk_length": 4, "n_epochs": 3, "max_windows": 80, "batch_size": 16,
          "random_state": 0, "dsic_interval": 2, "dsic_draws": 2, "head_init": "default", "multitask": True,
          "optimizer_kwargs": {"lr": 3e-3}}
QUIET = {"enable_progress_bar": False, "accelerator": "cpu"}


def main(work_dir: str, mode: str, kill_at: int, out: str) -> None:
    import numpy as np
    from darts import TimeSeries

    import trace_forecast.darts.model as darts_model
    from trace_forecast.darts import TraceModel

    if kill_at > 0:
        recipe = darts_model.recipe_callbacks
        darts_model.recipe_callbacks = lambda *a, **k: [*recipe(*a, **k), KillAt(kill_at)]
    t = np.arange(400)
    noise = np.random.default_rng(0).normal(0, 0.3, len(t))
    series = TimeSeries.from_values((10 + 3 * np.sin(2 * np.pi * t / 24) + noise).astype("float32"))
    if mode == "resume":
        model = TraceModel.load_from_checkpoint("resume", work_dir=work_dir, best=False)
    else:
        saving = {"save_checkpoints": True, "model_name": "resume", "work_dir": work_dir, "force_reset": True}
        model = TraceModel(**PARAMS, pl_trainer_kwargs=QUIET, **(saving if mode == "fresh" else {}))
    model.fit(series)
    record = {"epochs": int(model.epochs_trained), "steps": int(model.trainer.global_step),
              "forecast": model.predict(4, verbose=False).values().ravel().tolist()}
    with open(out, "w") as fh:
        json.dump(record, fh)


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
