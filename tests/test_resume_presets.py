"""Every preset in configs/ resumes exactly: stopped mid-epoch and resumed equals uninterrupted.

Each preset runs through the same CLI as ``train.py`` (in-process, tiny batches, no metric
callbacks), with epochs cut to 3 batches so that the stop falls in the middle of an epoch; the
resumed run starts from a different global RNG state, which the checkpoint must restore.
Compared: every entry of the module's state dict (weights, EMA, buffers such as fixed latents,
image pools, tracked averages), the counters and the losses after the stop.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from presets import CONFIGS, data_overrides, fit_in_process

G_STEPS = 4  # uninterrupted run; the checkpoint is taken at G_STEPS // 2


class SaveAtGeneratorStep(L.Callback):
    def __init__(self, step: int, path: Path) -> None:
        self.step, self.path, self.saved = step, path, False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self.saved and pl_module.generator_steps == self.step:
            trainer.save_checkpoint(self.path)
            self.saved = True


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_preset_resumes_exactly(config, tmp_path):
    overrides = data_overrides(config, tmp_path, batch_size=4)
    ckpt = tmp_path / "half.ckpt"  # taken during the uninterrupted run: saving changes no state
    full, full_losses = fit_in_process(config, tmp_path / "full", G_STEPS, [SaveAtGeneratorStep(G_STEPS // 2, ckpt)], None,
                             overrides)
    assert ckpt.is_file()
    resumed, resumed_losses = fit_in_process(config, tmp_path / "resumed", G_STEPS, [], ckpt, overrides)

    assert (resumed.generator_steps, resumed.discriminator_steps, resumed.images_seen) == \
        (full.generator_steps, full.discriminator_steps, full.images_seen)
    assert full.generator_steps == G_STEPS
    assert (full.discriminator_steps // 2) % 3 != 0  # the checkpoint was taken mid-epoch (epochs of 3 batches)
    full_state, resumed_state = full.state_dict(), resumed.state_dict()
    assert full_state.keys() == resumed_state.keys()
    for key, value in full_state.items():
        torch.testing.assert_close(resumed_state[key], value, rtol=0, atol=0, msg=key)
    assert resumed_losses == full_losses[len(full_losses) - len(resumed_losses):]
