"""``bf16-mixed`` trains every preset in configs/ (every family, its penalties included).

Each preset runs 2 generator steps in-process under ``--trainer.precision bf16-mixed`` (CPU autocast
to bfloat16, as on GPUs), with the same tiny batches and stand-in data as the resume test. Checked:
both players' weights moved, every logged loss is finite, and the weights stay float32 (autocast
changes the compute dtype, never the parameters').
"""

from __future__ import annotations

import math

import pytest
import torch
from presets import CONFIGS, data_overrides, fit_in_process


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_preset_trains_in_bf16_mixed(config, tmp_path):
    overrides = [*data_overrides(config, tmp_path, batch_size=4), "--trainer.precision=bf16-mixed"]
    before, _ = fit_in_process(config, tmp_path / "init", 0, [], None, overrides)
    model, losses = fit_in_process(config, tmp_path / "run", 2, [], None, overrides)
    assert model.generator_steps == 2
    assert model.trainer.precision == "bf16-mixed"
    assert losses and all(math.isfinite(v) for _, step in losses for v in step.values())
    assert any(k.startswith("loss/G") for _, step in losses for k in step)
    start = before.state_dict()
    for player in ("generator", "discriminator"):
        moved = [not torch.equal(v, start[k]) for k, v in model.state_dict().items()
                 if k.startswith(player + ".") and isinstance(v, torch.Tensor) and v.is_floating_point()]
        assert any(moved), f"{player} did not change"
    assert all(p.dtype == torch.float32 for p in model.parameters())
