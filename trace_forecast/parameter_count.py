"""Count trainable parameters per component: adapter, gates, head, backbone."""

from __future__ import annotations

from torch import nn


def _component(name: str) -> str:
    if name.endswith(".gate"):
        return "gates"
    if "lora_" in name:
        return "adapter"
    if name.startswith("forecast_head.") or name.startswith("backbone.head."):
        return "head"
    return "backbone"


def parameter_report(network: nn.Module) -> dict[str, int]:
    """Trainable parameters per component, their total, and the backbone's size.

    Keys: ``adapter_trainable`` (LoRA A/B, PEFT's included), ``gates_trainable``,
    ``head_trainable``, ``backbone_trainable`` (non-zero only for full fine-tuning),
    ``total_trainable``, and ``backbone_total`` (every backbone parameter, frozen or not,
    adapters excluded). Shared parameters are counted once; modules pruned by Gated DSIC
    after its final step no longer require gradients and are not counted.
    """
    report = dict.fromkeys(("adapter_trainable", "gates_trainable", "head_trainable", "backbone_trainable"), 0)
    backbone_total = 0
    for name, p in network.named_parameters():
        comp = _component(name)
        if comp == "backbone" or (comp == "head" and name.startswith("backbone.head.")):
            backbone_total += p.numel()
        if p.requires_grad:
            report[f"{comp}_trainable"] += p.numel()
    report["total_trainable"] = sum(report.values())
    report["backbone_total"] = backbone_total
    return report
