"""A checkpointing fit in its own process, for ``tests/test_resume.py``: ``python
resume_child.py FOLDER KILL_AT OUT [ADAPTER]`` fits a tiny forecaster (``FOLDER``: its
checkpoint folder, ``-`` for none; ``ADAPTER``: default ``gated_dsic``), kills itself with
SIGKILL after training step ``KILL_AT`` (0: never) and otherwise writes its forecast and fit
record to ``OUT`` (JSON)."""

from __future__ import annotations

import json
import os
import signal
import sys
import warnings

import pytorch_lightning as pl

PARAMS = {"context_length": 32, "max_epochs": 2, "max_windows": 80, "batch_size": 16, "random_state": 0,
          "dsic_interval": 2, "dsic_draws": 2, "learning_rate": 3e-3, "head_init": "default", "multitask": True,
          "checkpoint_every": 2}


class KillAt(pl.Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def main(folder: str, kill_at: int, out: str, adapter: str = "gated_dsic") -> None:
    from sktime.datasets import load_airline

    import trace_forecast.engine.trainer as trainer
    from trace_forecast import TraceForecaster

    if kill_at > 0:
        recipe = trainer.recipe_callbacks
        trainer.recipe_callbacks = lambda *a, **k: [*recipe(*a, **k), KillAt(kill_at)]
    forecaster = TraceForecaster(**PARAMS, adapter=adapter, checkpoint_dir=None if folder == "-" else folder)
    forecaster.fit(load_airline(), fh=[1, 2, 3, 4])
    record = {"forecast": forecaster.predict().tolist(), "kept": forecaster.fit_choices_["kept"],
              "train_loss": forecaster.train_loss_, "val_loss": forecaster.val_loss_,
              "selection": forecaster.selection_history_.to_numpy().tolist()}
    with open(out, "w") as fh:
        json.dump(record, fh)


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], *sys.argv[4:5])
