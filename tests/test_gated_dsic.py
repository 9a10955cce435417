"""Gated DSIC must *work*: it keeps the modules that can help, honours the budget,
can bring back a module it pruned, and survives checkpoint/resume."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trace_forecast.adapters import GatedLoraLinear, GatedLoraSet
from trace_forecast.selection import GatedDSIC, KeepSchedule
from trace_forecast.selection.gated_dsic import assign_draws, random_subset_masks, top_k_mask

N_BRANCHES, DIM = 6, 8


class PlantedModel(pl.LightningModule):
    """``y = sum_i W_i x_i`` with frozen ``W_i``; branch ``i`` only sees its own input ``x_i``.

    A target that adds ``D_j x_j`` can only be fitted by branch ``j``'s adapter: the
    other adapters see inputs independent of it.
    """

    def __init__(self, lr: float = 1e-2) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        branches = []
        for _ in range(N_BRANCHES):
            layer = nn.Linear(DIM, DIM, bias=False)
            layer.weight.data = torch.randn(DIM, DIM, generator=g) / DIM**0.5
            branches.append(GatedLoraLinear(layer, rank=2, alpha=4.0))
        self.branches = nn.ModuleList(branches)
        self.lr = lr
        self.phase = 0

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        return sum(branch(xs[:, i]) for i, branch in enumerate(self.branches))

    def compute_loss(self, batch) -> torch.Tensor:
        xs, y_a, y_b = batch
        target = y_a if self.phase == 0 else y_b
        return torch.mean((self(xs) - target) ** 2)

    def training_step(self, batch, batch_idx):
        return self.compute_loss(batch)

    def validation_step(self, batch, batch_idx):
        return self.compute_loss(batch)

    def configure_optimizers(self):
        return torch.optim.Adam([p for p in self.parameters() if p.requires_grad], lr=self.lr)


def planted_data(plants_a: dict[int, float], plants_b: dict[int, float], n: int = 2048, seed: int = 1):
    """Inputs and two targets; ``plants`` maps branch -> strength of its planted delta."""
    g = torch.Generator().manual_seed(seed)
    model = PlantedModel()
    xs = torch.randn(n, N_BRANCHES, DIM, generator=g)
    deltas = {j: torch.randn(DIM, 2, generator=g) @ torch.randn(2, DIM, generator=g) / DIM**0.5 for j in range(N_BRANCHES)}
    with torch.no_grad():
        base = model(xs)

    def target(plants):
        return base + sum(s * xs[:, j] @ deltas[j].T for j, s in plants.items())

    return TensorDataset(xs, target(plants_a), target(plants_b))


class SwitchPhase(pl.Callback):
    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        pl_module.phase = int(trainer.global_step >= self.at_step)


def run(dsic: GatedDSIC, data: TensorDataset, steps: int, extra=(), model=None, ckpt_path=None, root=None):
    pl.seed_everything(0, verbose=False)
    model = model or PlantedModel()
    trainer = pl.Trainer(
        max_steps=steps,
        callbacks=[dsic, *extra],
        logger=False,
        enable_checkpointing=False,  # the test saves and resumes its own checkpoint
        default_root_dir=root,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0 if root is None else 1,
    )
    loader = DataLoader(data, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
    val = DataLoader(data, batch_size=128)
    trainer.fit(model, loader, val, ckpt_path=ckpt_path)
    return model, trainer


def kept(model) -> set[int]:
    masks = GatedLoraSet.find(model).masks()
    return {i for i, m in enumerate(masks.tolist()) if m > 0.5}


def test_keeps_the_modules_that_can_reach_the_planted_target():
    data = planted_data({0: 1.0, 3: 1.0}, {0: 1.0, 3: 1.0})
    dsic = GatedDSIC(budget=2, warmup=0.1, final=0.8, interval=5, draws=8)
    model, _ = run(dsic, data, steps=200)
    assert kept(model) == {0, 3}
    report = {row["module"]: row for row in dsic.report()}
    planted = min(report[f"branches.{i}"]["importance"] for i in (0, 3))
    others = max(report[f"branches.{i}"]["importance"] for i in (1, 2, 4, 5))
    assert planted > 3 * others  # a clear margin, not a coin flip


def test_random_rule_is_a_seeded_control_of_the_same_size():
    """``importance_rule="random"`` (the ablation control) keeps a subset of the budget's size
    drawn from the seed, the same at every selection, whatever the data say."""
    data = planted_data({0: 1.0, 3: 1.0}, {0: 1.0, 3: 1.0})
    subsets = []
    for seed in (0, 0, 1, 2):
        dsic = GatedDSIC(budget=2, warmup=0.1, final=0.8, interval=5, draws=8, importance_rule="random", seed=seed)
        model, _ = run(dsic, data, steps=40)
        assert len(kept(model)) == 2 and dsic.frozen
        assert len({tuple(h["mask"]) for h in dsic.history if h["kept"] == 2}) == 1
        subsets.append(frozenset(kept(model)))
    assert subsets[0] == subsets[1]  # reproducible
    assert len(set(subsets)) > 1  # and not the planted pair by construction


def test_final_selection_equals_budget_and_freezes_pruned_modules():
    data = planted_data({2: 1.0}, {2: 1.0})
    dsic = GatedDSIC(budget=0.5, warmup=0.1, final=0.6, interval=4, draws=4)
    model, _ = run(dsic, data, steps=100)
    lora = GatedLoraSet.find(model)
    assert int(lora.masks().sum()) == N_BRANCHES // 2
    assert dsic.frozen
    for m in lora:
        assert m.gate.requires_grad == m.active
        assert m.lora_B.requires_grad == m.active
    assert set(lora.state_dict(kept_only=True)) == {
        f"branches.{i}.{k}" for i in kept(model) for k in ("lora_A", "lora_B", "gate")
    }
    assert 2 in kept(model)


def test_a_module_pruned_early_is_selected_again():
    # Phase A: branch 0 matters most, branch 3 a little -> 3 is pruned once the budget is 1.
    # Phase B: only branch 3 matters -> 3 must come back and 0 must go.
    data = planted_data({0: 1.0, 3: 0.5}, {3: 1.5})
    dsic = GatedDSIC(budget=1, warmup=0.05, final=0.9, interval=5, draws=8, ema=0.5)
    model, _ = run(dsic, data, steps=400, extra=[SwitchPhase(at_step=200)])
    history = dsic.history
    pruned_before_switch = [h for h in history if h["step"] < 200 and h["mask"][3] == 0.0]
    assert pruned_before_switch, "module 3 should have been pruned during phase A"
    assert kept(model) == {3}


def test_selection_state_survives_checkpoint_and_resume(tmp_path):
    data = planted_data({0: 1.0, 3: 1.0}, {0: 1.0, 3: 1.0})
    first = GatedDSIC(budget=2, warmup=0.1, final=0.8, interval=5, draws=4)
    model, trainer = run(first, data, steps=60, root=str(tmp_path))
    path = tmp_path / "mid.ckpt"
    trainer.save_checkpoint(path)
    state = torch.load(path, weights_only=False)
    saved = next(v for k, v in state["callbacks"].items() if "GatedDSIC" in k)
    assert torch.equal(saved["importance"], first.importance)

    resumed = GatedDSIC(budget=2, warmup=0.1, final=0.8, interval=5, draws=4)
    # The schedule is resolved against the total steps, so keep max_steps identical.
    model2, trainer2 = run(resumed, data, steps=60, model=PlantedModel(), ckpt_path=str(path), root=str(tmp_path))
    assert trainer2.global_step == 60
    assert torch.equal(resumed.importance, first.importance)
    assert resumed.history == first.history
    assert kept(model2) == kept(model)


def test_keep_schedule_is_cubic_monotone_and_hits_target():
    s = KeepSchedule(n_modules=84, target=21, warmup_step=10, final_step=110)
    counts = [s.keep(step) for step in range(0, 130)]
    assert counts[:11] == [84] * 11
    assert all(a >= b for a, b in zip(counts, counts[1:]))
    assert counts[110:] == [21] * 20
    assert s.keep(60) == 21 + int((84 - 21) * 0.5**3)


def test_draws_switch_on_exactly_k_modules_and_cover_all():
    g = torch.Generator().manual_seed(0)
    masks = random_subset_masks(10, 4, 200, g)
    assert (masks.sum(1) == 4).all()
    assert (masks.sum(0) > 0).all()


def test_top_k_breaks_ties_by_position():
    assert top_k_mask(torch.tensor([1.0, 3.0, 3.0, 0.5]), 2).tolist() == [0.0, 1.0, 1.0, 0.0]
    assert top_k_mask(torch.zeros(4), 1).tolist() == [1.0, 0.0, 0.0, 0.0]


def test_importance_is_averaged_only_over_draws_where_module_is_active():
    dsic = GatedDSIC()
    dsic.importance = torch.zeros(3)
    dsic.seen = torch.zeros(3, dtype=torch.bool)
    dsic.update_importance((torch.tensor([4.0, 0.0, 9.0]), torch.tensor([2.0, 0.0, 3.0])))
    assert dsic.importance.tolist() == [2.0, 0.0, 3.0]
    assert dsic.seen.tolist() == [True, False, True]


def test_draws_split_many_channel_samples_by_window_instead_of_repeating_them():
    """Enough items: each draw owns whole items. A few samples of many channels (a Darts batch
    of a 321-channel series holds one sample): the draws share its windows, contiguous and
    near-equal, so an evaluation runs the batch once and not once per draw (17.4 GB -> 3.3 GB
    on an Electricity-shaped series, ``benchmarks.many_channels``). Items repeat only when
    there are fewer windows than draws."""
    cpu = torch.device("cpu")
    batch = (torch.arange(10.0)[:, None], torch.zeros(10, 2))
    taken, owner = assign_draws(batch, 4, 10, cpu)
    assert taken[0].ravel().tolist() == list(range(8)) and owner.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]

    one_sample = (torch.zeros(1, 8, 321),)
    taken, owner = assign_draws(one_sample, 8, 321, cpu)
    assert taken[0].shape[0] == 1 and len(owner) == 321
    counts = torch.bincount(owner).tolist()
    assert len(counts) == 8 and max(counts) - min(counts) <= 1
    assert (owner.diff() >= 0).all()

    few_windows = (torch.arange(2.0)[:, None],)  # 2 samples x 3 channels = 6 windows < 8 draws
    taken, owner = assign_draws(few_windows, 8, 6, cpu)
    assert taken[0].ravel().tolist() == [0.0, 1.0, 0.0, 1.0] and len(owner) == 12
    assert sorted(set(owner.tolist())) == list(range(8))

    single_windows = (torch.arange(3.0)[:, None],)  # univariate items: repeated, one per draw
    taken, owner = assign_draws(single_windows, 8, 3, cpu)
    assert taken[0].ravel().tolist() == [0, 1, 2, 0, 1, 2, 0, 1] and owner.tolist() == list(range(8))
