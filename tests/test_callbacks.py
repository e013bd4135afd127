"""Callbacks: sample grids and scatter plots, the divergence guard keeping the last good checkpoint."""

from __future__ import annotations

import hashlib

import pytest
import torch
from conftest import digits_data, digits_gan, make_trainer, toy_data, toy_gan
from lightning.pytorch.callbacks import ModelCheckpoint
from PIL import Image

from callbacks import DivergenceError, DivergenceGuard, SampleGrid
from callbacks.images import image_grid, scatter_plot, to_uint8


def test_to_uint8_maps_the_range_ends():
    out = to_uint8(torch.tensor([[[[-1.0, 0.0, 1.0, 5.0]]]]))
    assert out.flatten().tolist() == [0, 128, 255, 255]


def test_image_grid_is_square_by_default():
    grid = image_grid(torch.zeros(16, 1, 8, 8), padding=2)
    assert grid.shape == (3, 4 * 10 + 2, 4 * 10 + 2) and grid.dtype == torch.uint8


def test_scatter_plot_marks_points_and_modes():
    modes = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    picture = scatter_plot(torch.tensor([[1.0, 0.0]]), modes, size=101)
    assert picture.shape == (3, 101, 101)
    red = (picture[0] > 200) & (picture[1] < 60)
    assert red[:, :50].any() and red[:, 50:].any()  # both mode crosses drawn


def test_sample_grid_writes_pngs_every_n_generator_steps(tmp_path):
    model = digits_gan(max_generator_steps=4)
    trainer = make_trainer(tmp_path, callbacks=[SampleGrid(every_n_generator_steps=2)])
    trainer.fit(model, digits_data())
    folder = tmp_path / "samples"
    assert sorted(p.name for p in folder.glob("step_*.png")) == ["step_0000002.png", "step_0000004.png"]
    image = Image.open(folder / "last.png")
    assert image.size == (8 * 34 + 2, 8 * 34 + 2)  # 64 fixed samples of 32 px in an 8x8 grid


def test_sample_grid_draws_a_scatter_plot_for_2d_data(tmp_path):
    model = toy_gan(max_generator_steps=2)
    trainer = make_trainer(tmp_path, callbacks=[SampleGrid(every_n_generator_steps=0, num_points=100)])
    trainer.fit(model, toy_data())
    assert Image.open(tmp_path / "samples" / "last.png").size == (512, 512)


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_divergence_guard_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    model = toy_gan(max_generator_steps=50)
    original = model.discriminator_loss

    def poisoned(batch, reg_weight):
        out = original(batch, reg_weight)
        if model.discriminator_steps >= 5:  # the 6th step diverges
            out["loss"] = out["loss"] * float("nan")
        return out

    model.discriminator_loss = poisoned
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, every_n_train_steps=2)
    trainer = make_trainer(tmp_path, callbacks=[DivergenceGuard(), checkpoint], enable_checkpointing=True)
    with pytest.raises(DivergenceError) as error:
        trainer.fit(model, toy_data())
    last = tmp_path / "ckpt" / "last.ckpt"
    message = str(error.value)
    assert "generator step 6" in message and "loss/D=nan" in message and str(last) in message
    digest = _digest(last)
    state = torch.load(last, weights_only=True)
    assert state["gan"]["generator_steps"] == 5
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values() if v.is_floating_point())
    assert _digest(last) == digest


def test_divergence_guard_catches_non_finite_weights(tmp_path):
    # a broken EMA generator leaves the losses finite: only the weight scan can see it
    model = toy_gan(max_generator_steps=10, ema_decay=0.9)
    with torch.no_grad():
        next(model.generator_ema.parameters())[0] = float("inf")
    trainer = make_trainer(tmp_path, callbacks=[DivergenceGuard(check_weights_every_n_steps=1)])
    with pytest.raises(DivergenceError, match=r"step 1 .*non-finite or exploded weight generator_ema\.net\.0\.weight \(max \|w\| = nan\);"):
        trainer.fit(model, toy_data())
