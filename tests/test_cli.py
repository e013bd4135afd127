"""train.py end to end: every preset in configs/ runs, resume, predict, validate, load_generator, bad input."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from presets import data_overrides, light_metrics_config, needs_standin

import train
from gan_modules import load_generator

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
QUICK = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "2"}
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"train.py {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    return proc


def test_there_are_presets():
    assert len(CONFIGS) >= 7


def generator_inputs(generator: torch.nn.Module, n: int) -> tuple[torch.Tensor, ...]:
    """Valid arguments of a loaded generator: latents (and labels), or source images for translation."""
    if hasattr(generator, "example_inputs"):
        return generator.example_inputs(n)
    z = torch.randn(n, generator.latent_dim)
    return (z, torch.arange(n) % generator.num_classes) if generator.num_classes else (z,)


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_preset_fits_a_few_steps(config, tmp_path):
    """``train.py fit`` on every preset, in-process (``train.main``, the same code path as the script
    minus the interpreter start, which would cost more than the run); the subprocess tests below run
    the script itself."""
    # Presets for public datasets run on a stand-in folder of the same layout, at batch 2 (their
    # GPU-scale batches would take minutes on a CPU); the embedded presets run exactly as written.
    # Their metric callbacks score 100 samples (light_metrics_config), not thousands.
    overrides = data_overrides(config, tmp_path, batch_size=2 if needs_standin(config) else None)
    root = tmp_path / "run"
    train.main(["fit", "--config", str(light_metrics_config(config, tmp_path)), f"--trainer.default_root_dir={root}", "--trainer.max_steps=6",
                "--trainer.limit_val_batches=1", "--trainer.check_val_every_n_epoch=1",
                *QUICK, *overrides])
    assert (root / "config.yaml").is_file()
    assert (root / "checkpoints" / "last.ckpt").is_file()
    assert (root / "samples" / "last.png").is_file()
    generator = load_generator(root / "checkpoints" / "last.ckpt")
    samples = generator(*generator_inputs(generator, 3))
    assert samples.shape == (3, *generator.sample_shape) and torch.isfinite(samples).all()


def test_fit_resume_predict_validate_and_load(tmp_path, capsys):
    config = str(light_metrics_config(ROOT / "configs" / "dcgan_digits.yaml", tmp_path))  # metrics on 100 samples
    small = ["--config", config, f"--trainer.default_root_dir={tmp_path}", "--model.init_args.generator.init_args.base_channels=8",
             "--model.init_args.discriminator.init_args.base_channels=8", "--data.init_args.batch_size=16", *QUICK]
    run("fit", *small, "--model.init_args.max_generator_steps=3")
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    first = torch.load(ckpt, weights_only=True)["gan"]
    assert first["generator_steps"] == 3 and first["images_seen"] == 3 * 16

    run("fit", *small, "--model.init_args.max_generator_steps=5", "--ckpt_path=last")
    resumed = torch.load(ckpt, weights_only=True)["gan"]
    assert resumed["generator_steps"] == 5 and resumed["images_seen"] == 5 * 16

    # predict and validate in-process (train.main: the script's code path without a third interpreter start)
    out = tmp_path / "generated"
    train.main(["predict", *small, f"--ckpt_path={ckpt}", "--data.init_args.predict_samples=20",
                "--trainer.callbacks+=callbacks.ImageWriter", f"--trainer.callbacks.output_dir={out}"])
    files = sorted(out.glob("*.png"))
    assert len(files) == 20
    assert Image.open(files[0]).size == (32, 32)

    capsys.readouterr()
    train.main(["validate", *small, f"--ckpt_path={ckpt}", "--trainer.limit_val_batches=2"])
    assert "val/D/real" in capsys.readouterr().out

    generator = load_generator(ckpt)
    assert (generator.latent_dim, generator.num_classes, generator.sample_shape) == (64, 0, (1, 32, 32))
    images = generator(torch.randn(4, 64))
    assert images.shape == (4, 1, 32, 32) and images.min() >= -1 and images.max() <= 1
    # the EMA generator is the one loaded
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    key = next(k for k in state if k.startswith("generator_ema."))
    torch.testing.assert_close(generator.state_dict()[key[len("generator_ema."):]], state[key])


def test_toy_predict_writes_reproducible_points(tmp_path):
    config = ["--config", str(ROOT / "configs" / "gan_mlp_toy_ring.yaml"), f"--trainer.default_root_dir={tmp_path}", *QUICK]
    train.main(["fit", *config, "--model.init_args.max_generator_steps=2"])
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    assert load_generator(ckpt).sample_shape == (2,)
    texts = []
    for seed in range(2):
        torch.manual_seed(seed)  # a different global RNG each time: the files must not depend on it
        train.main(["predict", *config, f"--ckpt_path={ckpt}", "--data.init_args.predict_samples=300",
                    "--data.init_args.batch_size=128"])
        texts.append((tmp_path / "predictions" / "points.csv").read_text())
    lines = texts[0].splitlines()
    assert lines[0] == "index,x0,x1" and len(lines) == 301 and lines[-1].startswith("299,")
    assert texts[0] == texts[1]  # each sample's latent is seeded by its index


BAD_INPUT = [
    (["--model.init_args.n_critc=5"], "n_critc"),
    (["--model.init_args.loss=hnge"], "valid: hinge, lsgan, minimax, nonsaturating, rpgan, wasserstein"),
    (["--model.init_args.generator.init_args.upsample=bilinear"], "upsample"),
    (["--data=datamodules.ImageFolderDataModule", "--data.init_args.root=/nonexistent/faces"], "/nonexistent/faces"),
]


def test_bad_input_gives_a_clear_error_from_the_script(tmp_path):
    """The script itself: a typo in the config exits non-zero and names the key on stderr."""
    args, message = BAD_INPUT[0]
    proc = run("fit", "--config", str(ROOT / "configs" / "dcgan_digits.yaml"), f"--trainer.default_root_dir={tmp_path}",
               "--trainer.max_steps=2", *QUICK, *args, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr


@pytest.mark.parametrize("args,message", BAD_INPUT, ids=[m for _, m in BAD_INPUT])
def test_bad_input_gives_a_clear_error(tmp_path, capsys, args, message):
    """Every bad input, in-process: parse errors exit (the message on stderr), setup errors raise."""
    with pytest.raises((SystemExit, Exception)) as error:
        train.main(["fit", "--config", str(ROOT / "configs" / "dcgan_digits.yaml"),
                    f"--trainer.default_root_dir={tmp_path}", "--trainer.max_steps=2", *QUICK, *args])
    if isinstance(error.value, SystemExit):
        assert error.value.code != 0
    assert message in capsys.readouterr().err + str(error.value)


def test_run_folder_is_named_after_the_preset_not_the_trainer_fragment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # runs/ is relative to the working directory
    args = ["--config", str(ROOT / "configs" / "gan_mlp_toy_ring.yaml"),
            "--config", str(ROOT / "configs" / "trainer" / "ddp_multinode.yaml"),
            "--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.num_nodes=1", "--trainer.precision=32-true"]
    cli = train.GANCLI(train.GANModule, train.GANDataModule, subclass_mode_model=True, subclass_mode_data=True,
                       auto_configure_optimizers=False, run=False, args=args, save_config_callback=None)
    assert Path(cli.trainer.default_root_dir) == Path("runs") / "gan_mlp_toy_ring"
    assert type(cli.trainer.strategy).__name__ == "GANDDPStrategy"  # the fragment's strategy: ddp


def _build(spec: object) -> object:
    """``spec`` with every ``{class_path, init_args}`` mapping instantiated (as LightningCLI would)."""
    if isinstance(spec, dict) and "class_path" in spec:
        module, _, name = spec["class_path"].rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        return cls(**{k: _build(v) for k, v in (spec.get("init_args") or {}).items()})
    if isinstance(spec, dict):
        return {k: _build(v) for k, v in spec.items()}
    if isinstance(spec, list):
        return [_build(v) for v in spec]
    return spec


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_preset_callback_builds_as_written(config):
    """The presets' callbacks with their settings as written (the fit test above lightens the metric
    callbacks, which would hide a setting that cannot work, such as a KID subset larger than the
    scored set). Callbacks scoring with the FID Inception network need its weights file, absent here."""
    callbacks = (yaml.safe_load(config.read_text()).get("trainer") or {}).get("callbacks") or []
    for spec in callbacks:
        if "FIDInceptionV3" in str(spec):
            continue
        assert _build(spec) is not None
