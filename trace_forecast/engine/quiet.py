"""Console hygiene for training and prediction: Lightning's banners, hints and known-harmless
third-party warnings are silenced unless the user asks for verbose output, and Gated DSIC's
selection log lines are shown when they do.

Why each warning is harmless (matched by message, so unrelated warnings still show):

- ``LeafSpec`` deprecation: raised inside Lightning's own ``_pytree`` helper under recent
  torch releases; nothing in this package or the user's code can act on it.
- ``pin_memory`` without an accelerator: Darts asks for pinned memory on every machine; on a
  CPU it is simply not used.
- ``module(s) in eval mode``: the frozen backbone's dropout and normalisation stay in eval
  mode on purpose while the adapters and head train.
- ``does not have many workers`` / ``num_workers``: windows are built in memory; worker
  processes would only add start-up time and copies.
- ``GPU available but not used``: the user chose ``device="cpu"``.
- ``validation_step`` without a ``val_dataloader``: a fit with nothing held out
  (``validation_fraction=0``, or series too short to hold windows out) trains without the
  validation loop on purpose; the step is there for the fits that have one.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

_LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning")
HARMLESS_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\).*",
    r".*'pin_memory' argument is set as true but no accelerator is found.*",
    r".*module\(s\) in eval mode at the start of training.*",
    r".*does not have many workers.*",
    r".*num_workers.*",
    r".*GPU available but not used.*",
    r".*You defined a `validation_step` but have no `val_dataloader`.*",
)


@contextlib.contextmanager
def harmless_warnings_ignored() -> Iterator[None]:
    """Ignore the known-harmless warnings above (and only those)."""
    with warnings.catch_warnings():
        for pattern in HARMLESS_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        yield


@contextlib.contextmanager
def quiet_lightning(verbose: bool) -> Iterator[None]:
    """Silence Lightning's banner lines (GPU/TPU availability, logger tips, "`Trainer.fit`
    stopped") unless ``verbose``, and the known-harmless warnings always."""
    silenced = () if verbose else _LIGHTNING_LOGGERS
    levels = {name: logging.getLogger(name).level for name in silenced}
    for name in silenced:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with harmless_warnings_ignored():
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def selection_log(verbose: bool) -> Iterator[None]:
    """While ``verbose``, show the package's INFO lines (one per Gated DSIC selection round)
    on stderr, unless the application has configured logging itself."""
    package = logging.getLogger("trace_forecast")
    configured = any(not isinstance(h, logging.NullHandler) for h in package.handlers)
    if not verbose or configured or logging.getLogger().handlers:
        yield
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("trace_forecast: %(message)s"))
    level = package.level
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.setLevel(level)


@contextlib.contextmanager
def console(verbose: bool) -> Iterator[None]:
    """Both: quiet Lightning unless ``verbose``; show selection rounds when ``verbose``."""
    with quiet_lightning(verbose), selection_log(verbose):
        yield
