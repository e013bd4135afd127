"""Resume is exact: k steps, stop, resume to 2k equals an uninterrupted 2k run on CPU."""

from __future__ import annotations

from functools import partial

import lightning as L
import pytest
import torch
from conftest import digits_data, digits_gan, make_trainer, toy_data, toy_gan


class LossRecorder(L.Callback):
    def __init__(self) -> None:
        self.losses: list[tuple[int, float, float | None]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        g = outputs.get("loss/G")
        self.losses.append((pl_module.discriminator_steps, outputs["loss/D"].item(), None if g is None else g.item()))


class SaveAt(L.Callback):
    """Saves a checkpoint at the end of the batch that makes generator step ``step``, as ModelCheckpoint would."""

    def __init__(self, step: int, path) -> None:
        self.step, self.path = step, path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.generator_steps == self.step and "loss/G" in outputs:
            trainer.save_checkpoint(self.path)


def _model(kind: str, steps: int):
    common = dict(max_generator_steps=steps, ema_decay=0.9, n_critic=2, reg_interval=3, r1_gamma=0.1,
                  g_scheduler=partial(torch.optim.lr_scheduler.StepLR, step_size=2, gamma=0.9))
    if kind == "toy":
        return toy_gan(**common), toy_data(batch_size=32, num_samples=256)  # 8 batches an epoch
    return digits_gan(**common), digits_data(batch_size=64)  # 22 batches an epoch: stops mid-epoch


def _fit(tmp_path, kind, steps, ckpt_path=None, seed=0, extra=()):
    L.seed_everything(seed)
    model, data = _model(kind, steps)
    L.seed_everything(seed)
    recorder = LossRecorder()
    trainer = make_trainer(tmp_path, callbacks=[recorder, *extra])
    trainer.fit(model, data, ckpt_path=ckpt_path)
    return model, trainer, recorder


def _state(model, trainer):
    return {
        "weights": {k: v.clone() for k, v in model.state_dict().items()},
        "optimizers": [opt.state_dict() for opt in trainer.optimizers],
        "lr": [opt.param_groups[0]["lr"] for opt in trainer.optimizers],
        "counters": (model.generator_steps, model.discriminator_steps, model.images_seen),
    }


# toy: 8 batches an epoch, so k = 4 (8 batches with n_critic 2) stops on an epoch boundary and k = 3
# in the middle of one; digits: 22 batches an epoch, k = 6 stops mid-epoch.
@pytest.mark.parametrize("kind,k", [("toy", 4), ("toy", 3), ("digits", 6)])
def test_stop_and_resume_equals_uninterrupted(tmp_path, kind, k):
    full_model, full_trainer, full_log = _fit(tmp_path / "full", kind, 2 * k)

    ckpt = tmp_path / "k.ckpt"
    _fit(tmp_path / "first", kind, 2 * k + 4, extra=[SaveAt(k, ckpt)])  # runs on past k: a checkpoint mid-run
    torch.manual_seed(12345)  # a different global RNG: the checkpoint must restore it
    resumed_model, resumed_trainer, resumed_log = _fit(tmp_path / "resumed", kind, 2 * k, ckpt_path=str(ckpt), seed=99)

    full, resumed = _state(full_model, full_trainer), _state(resumed_model, resumed_trainer)
    assert resumed["counters"] == full["counters"] == (2 * k, 4 * k, 4 * k * (32 if kind == "toy" else 64))
    assert resumed["lr"] == full["lr"]
    assert full["weights"].keys() == resumed["weights"].keys()
    for key, value in full["weights"].items():  # generator, discriminator, EMA, fixed latents
        torch.testing.assert_close(resumed["weights"][key], value, rtol=0, atol=0, msg=key)
    for a, b in zip(full["optimizers"], resumed["optimizers"], strict=True):
        for pa, pb in zip(a["state"].values(), b["state"].values(), strict=True):
            for name in pa:
                torch.testing.assert_close(pa[name], pb[name], rtol=0, atol=0)
    # the losses after the stop are the same numbers
    assert resumed_log.losses == full_log.losses[len(full_log.losses) - len(resumed_log.losses):]
    assert len(resumed_log.losses) == 2 * k
