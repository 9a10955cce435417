"""Which parts of the foundation model did fine-tuning use? Gated DSIC's selection, drawn.

TraceForecaster puts a gated LoRA module on every linear layer of the backbone's encoder
(4 blocks x 7 layers for the embedded backbone) and Gated DSIC re-measures every module's
importance every few steps -- the expected loss increase if the module were switched off,
estimated by Monte-Carlo random gate masks on validation data -- and keeps the most
important ones, pruning the rest (reversibly until the selection freezes). This script
fine-tunes on ETTh1's oil temperature with a longer run than the default (2,048 windows,
a selection round every 4 steps) so there are several rounds to see, prints the last
round's selection and which state the fit kept (the trained adapters, or the closed-form
head start where the validation windows prefer it), and draws the rounds.

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
    forecaster = TraceForecaster(max_windows=2048, dsic_interval=4, random_state=0)
    forecaster.fit(y, fh=list(range(1, 97)))
    history = forecaster.selection_history_
    last = history[history["step"] == history["step"].max()]
    kept = last[last["kept"]]
    rounds = history["step"].nunique()
    print(f"Gated DSIC: {rounds} selection rounds; the last one kept {len(kept)} of {len(last)} modules")
    by_block: dict[int, list[str]] = {}
    for name in kept["module"]:
        block, kind = module_position(name)
        by_block.setdefault(block, []).append(kind)
    for block in sorted(by_block):
        print(f"  block {block}: {', '.join(by_block[block])}")
    # The fit keeps whichever state the validation windows prefer: the trained adapters, or
    # the closed-form head start with the adapters switched off.
    choice = forecaster.get_fitted_params()["fit_choices"]["kept"]
    kept_state = "the closed-form head start (adapters switched off)" if choice == "start" else f"the state after {choice}"
    print(f"validation kept {kept_state}: {forecaster.get_fitted_params()['total_trainable']:,} trainable parameters")
    fig = plot_adapter_selection(forecaster, title=f"Gated DSIC on ETTh1 OT (H = 96): {rounds} rounds")
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")
    return forecaster


if __name__ == "__main__":
    main(*sys.argv[1:2])
