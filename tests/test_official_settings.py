"""The full-size presets print the official settings (``--print_config``), read against a table kept here.

Each value is the one in the official code, cited by file and setting; a preset's deliberate departures
are listed in its header (checked below) and in docs/families.md, and are not in this table.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
import yaml

import train

ROOT = Path(__file__).resolve().parents[1]
M, G, D, DATA = "model.init_args.", "model.init_args.generator.init_args.", "model.init_args.discriminator.init_args.", \
    "data.init_args."
# stylegan2-ada train.py: G/D_opt_kwargs (lrate, betas, eps), before the lazy-regularization correction
ADAM = {f"{M}{player}_optimizer.init_args.{key}": value for player in "gd"
        for key, value in (("lr", 0.0025), ("betas", [0.0, 0.99]), ("eps", 1e-8))}

OFFICIAL: dict[str, dict[str, object]] = {
    # NVlabs/stylegan2-ada-pytorch train.py cfg_specs['cifar'] (+ the `if cfg == 'cifar'` lines);
    # training/training_loop.py: G_reg_interval 4, D_reg_interval 16, Gmain/Greg/Dmain/Dreg phases
    "stylegan2_cifar10": {
        M + "r1_gamma": 0.01, M + "reg_interval": 16, M + "pl_interval": 4, M + "lazy_regularization": "separate",
        M + "pl_weight": 0.0, M + "style_mixing_prob": 0.0, M + "ema_half_life_kimg": 500.0, M + "ema_rampup": 0.05,
        M + "max_kimg": 100000.0, M + "metrics_noise_mode": "random", M + "loss": "nonsaturating", **ADAM,
        G + "latent_dim": 512, G + "w_dim": 512, G + "channel_base": 32768, G + "channel_max": 512,
        G + "mapping_layers": 2, G + "mapping_lr_multiplier": 0.01, G + "block_architecture": "skip",
        D + "architecture": "orig", D + "mbstd_group_size": 32,
        DATA + "total_batch_size": 64, DATA + "xflip": False,  # README's cifar command has no --mirror
    },
    # cfg_specs['paper256']; StyleGAN2Loss defaults (pl_weight 2, pl_decay 0.01, pl_batch_shrink 2, mixing 0.9);
    # README: FFHQ 256 made with dataset_tool.py --resize-filter=box; the paper256 nets are "-mirror-"
    "stylegan2_ffhq256": {
        M + "r1_gamma": 1.0, M + "reg_interval": 16, M + "pl_interval": 4, M + "lazy_regularization": "separate",
        M + "pl_weight": 2.0, M + "pl_decay": 0.01, M + "pl_batch_shrink": 2, M + "style_mixing_prob": 0.9,
        M + "ema_half_life_kimg": 20.0, M + "ema_rampup": None, M + "max_kimg": 25000.0,
        M + "metrics_noise_mode": "random", **ADAM,
        G + "channel_base": 16384, G + "channel_max": 512, G + "mapping_layers": 8,
        D + "architecture": "resnet", D + "mbstd_group_size": 8,
        DATA + "total_batch_size": 64, DATA + "xflip": True, DATA + "resize": "box",
    },
    # brownvc/R3GAN train.py --preset=CIFAR10 (schedulers, WidthPerStage, CardinalityPerStage, NoiseDimension);
    # README command: --batch=512 --mirror=1; training/training_loop.py fetches G_img apart from D_img
    "r3gan_cifar10": {
        M + "gamma": 0.05, M + "gamma_final": 0.005, M + "lr": 0.0002, M + "lr_final": 0.00005, M + "beta2": 0.9,
        M + "beta2_final": 0.99, M + "ema_kimg": 0.0, M + "ema_kimg_final": 5000.0, M + "decay_kimg": 20000.0,
        M + "decay_shape": "cosine", M + "fresh_generator_reals": True,
        G + "latent_dim": 64, G + "widths": [768], G + "cardinalities": [96], G + "blocks": [2], G + "expansion": 2,
        DATA + "total_batch_size": 512, DATA + "xflip": True,
    },
    # --preset=FFHQ-256; README command: --batch=256 --mirror=1
    "r3gan_ffhq256": {
        M + "gamma": 150.0, M + "gamma_final": 15.0, M + "ema_kimg_final": 500.0, M + "decay_kimg": 20000.0,
        M + "fresh_generator_reals": True,
        G + "widths": [768, 768, 768, 768, 384, 192, 96], G + "cardinalities": [96, 96, 96, 96, 48, 24, 12],
        D + "widths": [768, 768, 768, 768, 384, 192, 96], D + "cardinalities": [96, 96, 96, 96, 48, 24, 12],
        DATA + "total_batch_size": 256, DATA + "xflip": True,
    },
    # tkarras/progressive_growing_of_gans config.py preset-v2-1gpu + -celeba (mirror_augment); train.py
    # TrainingSchedule (600 + 600 kimg), reset_opt_for_new_lod, G_smoothing 0.999; networks.py mbstd 4;
    # dataset_tool.py create_celeba (202,599 images, cx 89, cy 121, 128 px, no resize)
    "progan_celeba128": {
        M + "kimg_per_phase": 600.0, M + "max_kimg": 12000.0, M + "reset_optimizers": True, M + "ema_decay": 0.999,
        M + "ema_half_life_kimg": None, M + "gp_weight": 10.0, M + "drift_weight": 0.001,
        M + "batch_sizes": {"4": 128, "8": 128, "16": 128, "32": 64, "64": 32, "128": 16},  # minibatch_dict
        G + "latent_dim": 512, D + "mbstd_group_size": 4,
        DATA + "crop_center": [89, 121], DATA + "crop_size": 128, DATA + "train_split": "all", DATA + "xflip": True,
    },
    # junyanz/pytorch-CycleGAN-and-pix2pix: models/networks.py get_norm_layer('instance'), options defaults
    "cyclegan_horse2zebra": {
        G + "norm": "instance_noaffine", D + "norm": "instance_noaffine", G + "n_blocks": 9, D + "n_layers": 3,
        M + "cycle_weight": 10.0, M + "identity_weight": 0.5, M + "pool_size": 50, M + "loss": "lsgan",
        M + "g_optimizer.init_args.lr": 0.0002, M + "g_optimizer.init_args.betas": [0.5, 0.999],
        DATA + "batch_size": 1, DATA + "load_size": 286, DATA + "crop_size": 256,
    },
}


def _printed(config: Path) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        train.main(["fit", "--config", str(config), "--print_config"])
    return yaml.safe_load(out.getvalue())


def _lookup(tree: dict, dotted: str) -> object:
    for key in dotted.split("."):
        tree = tree[key]
    return tree


@pytest.mark.parametrize("preset", list(OFFICIAL))
def test_preset_prints_the_official_settings(preset: str) -> None:
    printed = _printed(ROOT / "configs" / f"{preset}.yaml")
    wrong = {key: (_lookup(printed, key), value) for key, value in OFFICIAL[preset].items()
             if _lookup(printed, key) != value}
    assert not wrong, f"{preset}: (printed, official) differ for {wrong}"


@pytest.mark.parametrize("preset", list(OFFICIAL))
def test_preset_header_lists_its_departures(preset: str) -> None:
    header = [line for line in (ROOT / "configs" / f"{preset}.yaml").read_text().splitlines() if line.startswith("#")]
    assert any(line.startswith("# Departures from the official recipe") for line in header), preset
