"""Which parts of the foundation model did fine-tuning use? Gated DSIC's selection, drawn.

TraceForecaster puts a gated LoRA module on every linear layer of the backbone's encoder
(4 blocks x 7 layers for the embedded backbone) and Gated DSIC re-measures every module's
importance every few steps -- the expected loss increase if the module were switched off,
estimated by Monte-Carlo random gate masks on validation data -- and keeps the most
important ones, pruning the rest (reversibly until the selection freezes). This script
fine-tunes on ETTh1's oil temperature with a longer run than the default (4,096 windows,
a selection round every 8 steps) so there are several rounds to see, prints the final
selection, and draws the rounds and the final choice.

Run: ``python examples/adapter_selection.py [OUT.png]`` (writes ``adapter_selection.png``
by default; about a minute on 2 CPU cores).
"""

import sys

import matplotlib

matplotlib.use("Agg")

from trace_forecast import TraceForecaster  # noqa: E402
from trace_forecast.datasets import load_etth1  # noqa: E402
from trace_forecast.plotting import module_position, plot_adapter_selection  # noqa: E402


def main(out: str = "adapter_selection.png") -> TraceForecaster:
    y = load_etth1()["OT"].iloc[: 12 * 30 * 24]  # ETTh1's standard training months
    forecaster = TraceForecaster(max_windows=4096, dsic_interval=8, random_state=0)
    forecaster.fit(y, fh=list(range(1, 97)))
    selected = forecaster.selected_modules_
    kept = selected[selected["kept"]]
    rounds = forecaster.selection_history_["step"].nunique()
    print(f"Gated DSIC: {rounds} selection rounds, kept {len(kept)} of {len(selected)} modules, "
          f"{forecaster.get_fitted_params()['total_trainable']:,} trainable parameters")
    by_block: dict[int, list[str]] = {}
    for name in kept["module"]:
        block, kind = module_position(name)
        by_block.setdefault(block, []).append(kind)
    for block in sorted(by_block):
        print(f"  block {block}: {', '.join(by_block[block])}")
    fig = plot_adapter_selection(forecaster, title=f"Gated DSIC on ETTh1 OT (H = 96): {rounds} rounds")
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")
    return forecaster


if __name__ == "__main__":
    main(*sys.argv[1:2])
