"""A run's folder is never lost or lied about: each case typed as a user would, through train.py.

Most runs go through ``train.main`` in-process (the script's code path without an interpreter start);
the exit codes are checked on the script itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from runs import ROOT, TOY, assert_same_weights, fit, load, script

import train
from callbacks.run_folder import LOCK, RunLock, config_changes

state = load


# 1 --------------------------------------------------------------------------------------------------


def test_fast_dev_run_leaves_the_run_alone(tmp_path):
    root = tmp_path / "run"
    fit(root, "--model.init_args.max_generator_steps=3",
        "--trainer.callbacks+=callbacks.SampleGrid", "--trainer.callbacks.every_n_generator_steps=2")
    watched = [root / "checkpoints" / "last.ckpt", root / "samples" / "last.png", root / "config.yaml"]
    before = {p: p.read_bytes() for p in watched}
    listing = sorted(p.relative_to(root) for p in root.rglob("*"))
    fit(root, "--trainer.fast_dev_run=2",
        "--trainer.callbacks+=callbacks.SampleGrid", "--trainer.callbacks.every_n_generator_steps=1")
    assert {p: p.read_bytes() for p in watched} == before
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == listing


# 2 --------------------------------------------------------------------------------------------------


def test_a_second_fit_into_a_run_folder_is_refused_and_overwrite_starts_over(tmp_path, capsys):
    root = tmp_path / "run"
    fit(root, "--model.init_args.max_generator_steps=3")
    ckpt = root / "checkpoints" / "last.ckpt"
    before = ckpt.read_bytes()
    with pytest.raises(SystemExit) as error:
        fit(root, "--model.init_args.max_generator_steps=2")
    assert "already holds a run" in str(error.value.code) and "--ckpt_path last" in str(error.value.code)
    assert "--overwrite true" in str(error.value.code)
    assert ckpt.read_bytes() == before
    assert not (root / LOCK).exists()  # a refused run leaves no lock behind

    fit(root, "--model.init_args.max_generator_steps=2", "--overwrite=true")
    assert state(ckpt)["gan"]["generator_steps"] == 2


def test_the_script_exits_non_zero_when_the_folder_holds_a_run(tmp_path):
    root = tmp_path / "run"
    fit(root, "--model.init_args.max_generator_steps=2")
    proc = script("fit", *TOY, f"--trainer.default_root_dir={root}", "--model.init_args.max_generator_steps=2")
    assert proc.returncode != 0 and "already holds a run" in proc.stderr


def test_a_live_run_holds_the_folder(tmp_path):
    root = tmp_path / "run"
    root.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (root / LOCK).write_text(json.dumps({"host": os.uname().nodename, "pid": sleeper.pid, "started": "now"}))
        with pytest.raises(SystemExit) as error:
            fit(root, "--model.init_args.max_generator_steps=1")
        assert f"process {sleeper.pid}" in str(error.value.code) and "another run is writing" in str(error.value.code)
        assert not (root / "checkpoints").exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    # the owner is dead now: its lock is stale and the next fit takes it over
    fit(root, "--model.init_args.max_generator_steps=1")
    assert (root / "checkpoints" / "last.ckpt").is_file() and not (root / LOCK).exists()


def test_the_lock_is_exclusive(tmp_path):
    first, second = RunLock(tmp_path), RunLock(tmp_path)
    first.acquire()
    owner = json.loads((tmp_path / LOCK).read_text())
    assert owner["pid"] == os.getpid()
    first.release()
    assert not (tmp_path / LOCK).exists()
    second.acquire()
    second.release()


# 3 --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["--trainer.max_steps", "--model.init_args.max_generator_steps"])
def test_resume_after_a_step_limit_equals_an_uninterrupted_run(tmp_path, limit):
    per_unit = 2 if limit == "--trainer.max_steps" else 1  # max_steps counts D and G steps
    fit(tmp_path / "full", f"{limit}={10 * per_unit}")
    fit(tmp_path / "part", f"{limit}={5 * per_unit}")
    first = state(tmp_path / "part" / "checkpoints" / "last.ckpt")
    assert first["gan"]["generator_steps"] == 5 and first["epoch"] == 0  # stopped inside epoch 0
    fit(tmp_path / "part", f"{limit}={10 * per_unit}", "--ckpt_path=last")
    full, resumed = state(tmp_path / "full" / "checkpoints" / "last.ckpt"), state(tmp_path / "part" / "checkpoints" / "last.ckpt")
    assert resumed["epoch"] == full["epoch"] == 1 and resumed["gan"]["generator_steps"] == 10
    assert_same_weights(full, resumed)


# 4 --------------------------------------------------------------------------------------------------


def test_resume_refuses_settings_that_would_not_take_effect(tmp_path):
    root = tmp_path / "run"
    fit(root, "--model.init_args.max_generator_steps=2")
    ckpt = root / "checkpoints" / "last.ckpt"
    config_before = (root / "config.yaml").read_text()
    for args, named in [(["--ckpt_path", str(ckpt), "--model.init_args.loss=hinge", "--model.init_args.n_critic=2"],
                         ["model.init_args.loss", "'nonsaturating' (checkpoint) -> 'hinge' (now)", "model.init_args.n_critic"]),
                        (["--ckpt_path=last", "--model.init_args.g_optimizer.init_args.lr=0.01"],
                         ["model.init_args.g_optimizer.init_args.lr"]),
                        (["--ckpt_path=last", "--model.init_args.d_optimizer=torch.optim.SGD",
                          "--model.init_args.d_optimizer.init_args.lr=0.1"], ["model.init_args.d_optimizer.class_path"])]:
        with pytest.raises(SystemExit) as error:
            fit(root, "--model.init_args.max_generator_steps=4", *args)
        for name in named:
            assert name in str(error.value.code)
    assert state(ckpt)["gan"]["generator_steps"] == 2
    assert (root / "config.yaml").read_text() == config_before
    # a longer run is a resume, and its config says so
    fit(root, "--model.init_args.max_generator_steps=4", "--ckpt_path=last")
    assert state(ckpt)["gan"]["generator_steps"] == 4
    assert yaml.safe_load((root / "config.yaml").read_text())["model"]["init_args"]["max_generator_steps"] == 4


def test_validate_and_predict_keep_the_fit_config(tmp_path):
    root = tmp_path / "run"
    fit(root, "--model.init_args.max_generator_steps=2")
    ckpt = root / "checkpoints" / "last.ckpt"
    config_before = (root / "config.yaml").read_text()
    common = [*TOY, f"--trainer.default_root_dir={root}", f"--ckpt_path={ckpt}"]
    train.main(["validate", *common, "--trainer.limit_val_batches=1"])
    train.main(["predict", *common, "--data.init_args.predict_samples=10", "--data.init_args.batch_size=5"])
    assert (root / "config.yaml").read_text() == config_before
    assert yaml.safe_load((root / "predict" / "config.yaml").read_text())["data"]["init_args"]["batch_size"] == 5
    assert (root / "validate" / "config.yaml").is_file()


def test_config_changes_names_the_settings():
    old = {"model": {"init_args": {"loss": "hinge", "max_generator_steps": 5,
                                   "generator": {"init_args": {"sample_shape": [2], "hidden_dim": 8}}}}, "data": {}}
    new = {"model": {"init_args": {"loss": "hinge", "max_generator_steps": 9,
                                   "generator": {"init_args": {"sample_shape": [3], "hidden_dim": 16}}}}, "data": {}}
    refused, accepted = config_changes(old, new)
    assert refused == ["model.init_args.generator.init_args.hidden_dim: 8 (checkpoint) -> 16 (now)"]
    assert accepted == ["model.init_args.max_generator_steps: 5 (checkpoint) -> 9 (now)"]


# 5 --------------------------------------------------------------------------------------------------


def write_digits(folder: Path, count: int = 64, size: int = 16) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(folder / f"{i:03d}.png")


FOLDER_GAN = ["--config", str(ROOT / "configs" / "dcgan_digits.yaml"), "--trainer.enable_progress_bar=false",
              "--trainer.enable_model_summary=false", "--trainer.callbacks=[]",
              "--data=datamodules.ImageFolderDataModule", "--data.init_args.image_size=32", "--data.init_args.channels=1",
              "--data.init_args.batch_size=8", "--model.init_args.generator.init_args.base_channels=4",
              "--model.init_args.discriminator.init_args.base_channels=4", "--model.init_args.generator.init_args.latent_dim=8"]


def test_an_unreadable_image_mid_epoch_names_the_file_and_the_option_and_saves(tmp_path):
    data = tmp_path / "images"
    write_digits(data)
    (data / "040.png").write_bytes(b"not a png")
    root = tmp_path / "run"
    with pytest.raises(Exception, match="040.png") as error:
        train.main(["fit", *FOLDER_GAN, f"--data.init_args.root={data}", f"--trainer.default_root_dir={root}",
                    "--model.init_args.max_generator_steps=30"])
    assert "skip_bad_images" in str(error.value)
    saved = state(root / "checkpoints" / "last.ckpt")["gan"]
    assert 0 < saved["generator_steps"] < 30  # the batches before the bad file were kept


# 6 --------------------------------------------------------------------------------------------------


def test_finite_divergence_is_caught_and_the_good_checkpoint_kept(tmp_path):
    root = tmp_path / "run"
    fit(root, "--model.init_args.max_generator_steps=3")
    good = (root / "checkpoints" / "last.ckpt").read_bytes()
    proc = script("fit", *TOY, f"--trainer.default_root_dir={root}", "--ckpt_path=last",
                  "--model.init_args.max_generator_steps=40", "--trainer.callbacks+=callbacks.DivergenceGuard",
                  "--trainer.callbacks.check_weights_every_n_steps=1",
                  "--trainer.callbacks+=callbacks.RunCheckpoint", "--trainer.callbacks.every_n_generator_steps=1",
                  "--model.init_args.d_optimizer.init_args.lr=1000000.0")
    # the lr change itself is refused on resume; a new run at that lr diverges with finite losses
    assert proc.returncode != 0 and "d_optimizer.init_args.lr" in proc.stderr
    proc = script("fit", *TOY, f"--trainer.default_root_dir={tmp_path / 'lr1e6'}",
                  "--model.init_args.max_generator_steps=40", "--model.init_args.d_optimizer.init_args.lr=1000000.0",
                  "--model.init_args.g_optimizer.init_args.lr=1000000.0")
    assert proc.returncode != 0
    assert "DivergenceError" in proc.stderr and "exploded" in proc.stderr
    ckpt = tmp_path / "lr1e6" / "checkpoints" / "last.ckpt"
    assert not ckpt.exists() or all(v.abs().max() < 1e5 for v in state(ckpt)["state_dict"].values() if v.is_floating_point() and v.numel())
    assert (root / "checkpoints" / "last.ckpt").read_bytes() == good


# 7 --------------------------------------------------------------------------------------------------


def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path):
    from datamodules.folder import load_image

    ramp = np.tile(np.linspace(0, 65535, 64).round().astype(np.uint16), (64, 1))
    path = tmp_path / "ramp16.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")
    image = load_image(str(path), 64, 1)  # [-1, 1]
    expected = torch.from_numpy(np.rint(ramp / 257.0) / 127.5 - 1.0).float()
    torch.testing.assert_close(image[0], expected, atol=1.5 / 127.5, rtol=0)
    assert (image > 0.99).float().mean() < 0.05  # clipping made 99% of it white


def _paired(tmp_path: Path, size_b: tuple[int, int]) -> Path:
    root = tmp_path / "pairs"
    for side, size in (("A", (32, 32)), ("B", size_b)):
        folder = root / "train" / side
        folder.mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", size, (i * 40, 0, 0)).save(folder / f"{i}.png")
    return root


def test_pairs_of_different_sizes_are_an_error(tmp_path):
    root = _paired(tmp_path, (48, 32))
    with pytest.raises(Exception, match="different sizes") as error:
        train.main(["fit", "--config", str(ROOT / "configs" / "pix2pix_facades.yaml"), f"--data.init_args.root={root}",
                    "--data.init_args.load_size=32", "--data.init_args.crop_size=32", "--data.init_args.batch_size=2",
                    f"--trainer.default_root_dir={tmp_path / 'run'}", "--trainer.max_steps=2", "--trainer.callbacks=[]",
                    "--trainer.enable_progress_bar=false", "--data.init_args.layout=folders",
                    "--data.init_args.val_split=null"])
    assert "48x32" in str(error.value) and "32x32" in str(error.value)


def test_side_by_side_images_of_odd_width_are_an_error(tmp_path):
    from datamodules.paired import read_pair

    path = tmp_path / "ab.png"
    Image.new("RGB", (65, 32)).save(path)
    with pytest.raises(ValueError, match="65 pixel"):
        read_pair((str(path), None), 3, 3)


# 8 --------------------------------------------------------------------------------------------------


def test_exit_non_zero_when_nothing_trained(tmp_path):
    data = tmp_path / "three"
    write_digits(data, count=3)
    proc = script("fit", *FOLDER_GAN, f"--data.init_args.root={data}", "--data.init_args.batch_size=64",
                  "--data.init_args.val_fraction=0", f"--trainer.default_root_dir={tmp_path / 'run'}",
                  "--trainer.max_steps=4")
    assert proc.returncode != 0
    assert "trained no batch" in proc.stderr and "data.batch_size is 64" in proc.stderr and "3 item" in proc.stderr


# 10 -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content,message", [(b"", "is empty"), (None, "truncated")])
def test_a_bad_checkpoint_file_is_named(tmp_path, content, message):
    root = tmp_path / "run"
    fit(root, "--model.init_args.max_generator_steps=1")
    ckpt = root / "checkpoints" / "last.ckpt"
    data = ckpt.read_bytes()
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(data[: len(data) // 2] if content is None else content)
    for sub in ("fit", "validate"):
        with pytest.raises(Exception, match=message) as error:
            train.main([sub, *TOY, f"--trainer.default_root_dir={tmp_path / sub}", f"--ckpt_path={bad}"])
        assert str(bad) in str(error.value)


def test_a_negative_learning_rate_names_the_optimizer(tmp_path):
    with pytest.raises(ValueError, match=r"model.init_args.g_optimizer \(the generator's optimizer\)"):
        fit(tmp_path / "run", "--model.init_args.g_optimizer.init_args.lr=-0.1")


def test_evaluate_names_a_one_image_folder_and_warns_on_three(tmp_path, capsys):
    import evaluate

    one, three = tmp_path / "one", tmp_path / "three"
    write_digits(one, count=1, size=32)
    write_digits(three, count=3, size=32)
    with pytest.raises(SystemExit):
        evaluate.main(["--fake", str(one), "--real", "digits:val", "--metrics", "fid", "--no_progress"])
    assert str(one) in capsys.readouterr().err
    evaluate.main(["--fake", str(three), "--real", "digits:val", "--metrics", "fid", "--no_progress"])
    out = capsys.readouterr().out
    assert "WARNING: FID from 3 images" in out and "singular" in out
