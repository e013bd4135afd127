"""Fault injection: for SIGTERM, SIGKILL, an exception in the data loader, divergence and a full disk,
the newest complete checkpoint survives, and a resume from it ends where an uninterrupted run ends."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from runs import ROOT, TOY, assert_same_weights, fit, last, script

from callbacks.checkpoints import CheckpointWriteError
from callbacks.guards import DivergenceError

STEPS = 12  # 12 batches at 8 an epoch: the faults below land in epochs 0 and 1
EVERY_4 = ["--trainer.callbacks+=callbacks.RunCheckpoint", "--trainer.callbacks.every_n_generator_steps=4"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("uninterrupted")
    fit(root, f"--model.init_args.max_generator_steps={STEPS}")
    return last(root)


def resume_and_compare(root: Path, reference: dict, base: list[str] = TOY) -> None:
    fit(root, f"--model.init_args.max_generator_steps={STEPS}", "--ckpt_path=last", base=base)
    assert_same_weights(reference, last(root))


def test_sigterm(tmp_path, uninterrupted):
    proc = script("fit", *TOY, f"--trainer.default_root_dir={tmp_path}", f"--model.init_args.max_generator_steps={STEPS}",
                  "--trainer.callbacks+=fault_injection.SignalAt", "--trainer.callbacks.step=5")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert last(tmp_path)["gan"]["generator_steps"] == 5
    resume_and_compare(tmp_path, uninterrupted)


def test_sigkill(tmp_path, uninterrupted):
    proc = script("fit", *TOY, f"--trainer.default_root_dir={tmp_path}", f"--model.init_args.max_generator_steps={STEPS}", *EVERY_4,
                  "--trainer.callbacks+=fault_injection.SignalAt", "--trainer.callbacks.step=6",
                  "--trainer.callbacks.signal_name=SIGKILL")
    assert proc.returncode == -signal.SIGKILL
    assert last(tmp_path)["gan"]["generator_steps"] == 4  # the newest complete checkpoint
    assert (tmp_path / ".run.lock").exists()  # the killed run's lock: stale, taken over by the resume
    resume_and_compare(tmp_path, uninterrupted)


def test_divergence(tmp_path, uninterrupted):
    with pytest.raises(DivergenceError, match="exploded"):
        fit(tmp_path, f"--model.init_args.max_generator_steps={STEPS}", *EVERY_4,
            "--trainer.callbacks+=callbacks.DivergenceGuard", "--trainer.callbacks.check_weights_every_n_steps=1",
            "--trainer.callbacks+=fault_injection.ExplodeAt", "--trainer.callbacks.step=6")
    saved = last(tmp_path)
    assert saved["gan"]["generator_steps"] == 4
    assert all(v.abs().max() < 1e3 for v in saved["state_dict"].values() if v.is_floating_point() and v.numel())
    resume_and_compare(tmp_path, uninterrupted)


def test_disk_full(tmp_path, uninterrupted, monkeypatch):
    real_save, calls = torch.save, []

    def full_disk(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) > 1:  # the first checkpoint fits, the second does not
            raise OSError(28, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(CheckpointWriteError, match="No space left") as error:
        fit(tmp_path, f"--model.init_args.max_generator_steps={STEPS}", *EVERY_4)
    assert "last.ckpt" in str(error.value) and "intact" in str(error.value)
    monkeypatch.setattr(torch, "save", real_save)
    assert last(tmp_path)["gan"]["generator_steps"] == 4
    resume_and_compare(tmp_path, uninterrupted)


def _images(folder: Path, count: int = 64) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(folder / f"{i:03d}.png")


FOLDER = ["--config", str(ROOT / "configs" / "dcgan_digits.yaml"), "--trainer.enable_progress_bar=false",
          "--trainer.enable_model_summary=false", "--trainer.callbacks=[]", "--data=datamodules.ImageFolderDataModule",
          "--data.init_args.image_size=32", "--data.init_args.channels=1", "--data.init_args.batch_size=8",
          "--data.init_args.val_fraction=0", "--model.init_args.generator.init_args.base_channels=4",
          "--model.init_args.discriminator.init_args.base_channels=4", "--model.init_args.generator.init_args.latent_dim=8"]


def test_exception_in_the_data_loader(tmp_path):
    data = tmp_path / "images"
    _images(data)
    base = [*FOLDER, f"--data.init_args.root={data}"]
    fit(tmp_path / "full", f"--model.init_args.max_generator_steps={STEPS}", base=base)
    reference = last(tmp_path / "full")

    root = tmp_path / "faulty"
    with pytest.raises(Exception, match=r"cannot read image .*\.png") as error:
        fit(root, f"--model.init_args.max_generator_steps={STEPS}", "--trainer.callbacks+=fault_injection.CorruptFilesAt",
            "--trainer.callbacks.step=5", f"--trainer.callbacks.folder={data}", base=base)
    assert "skip_bad_images" in str(error.value)
    assert last(root)["gan"]["generator_steps"] == 5  # saved between batches: the last finished one
    _images(data)  # the user repairs the files and resumes
    resume_and_compare(root, reference, base=base)
