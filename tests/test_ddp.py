"""GAN-aware DDP on 2 CPU processes (gloo): equal to one process, identical ranks, files written once.

Each DDP run is a subprocess (Lightning's launcher re-runs the script per process): see ddp_worker.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "ddp_worker.py"
ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}

class Case(NamedTuple):
    """A DDP-equals-one-process case: ``batches`` per run at per-rank batch ``b``, with ``overrides``;
    ``scaled(k)`` gives overrides that scale with the per-process batch (k = 2 for the single process,
    1 per DDP rank); ``preset`` when the case is not named after its preset; ``images`` the images the
    run must have seen, where that checks the batch size it trained at."""

    batches: int
    b: int
    overrides: list[str]
    preset: str | None = None
    scaled: Callable[[int], list[str]] | None = None
    images: int | None = None


# The WGAN-GP generator drops its batch norm here: per-rank BatchNorm statistics over b samples differ
# from statistics over 2b, in any DDP (SyncBatchNorm, which would fix that, needs GPUs). The CycleGAN
# preset has no norm layers (norm: none).
# StyleGAN presets under DDP: see the stylegan_cond_digits case below for why each setting
STYLEGAN_DDP = ["--model.init_args.discriminator.init_args.mbstd_group_size=0", "--model.init_args.style_mixing_prob=0",
                "--model.init_args.generator.init_args.w_avg_beta=1.0",
                *(f'--model.init_args.{player}_optimizer={{"class_path": "torch.optim.SGD", "init_args": {{"lr": 0.01}}}}'
                  for player in ("g", "d"))]
CASES = {
    "gan_mlp_toy_ring": Case(4, 32, []),
    "wgan_gp_digits": Case(5, 8, ["--model.init_args.generator.init_args.norm=none",
                                  "--model.init_args.generator.init_args.base_channels=8",
                                  "--model.init_args.discriminator.init_args.base_channels=8"]),
    # four networks, two optimizers over two networks each; the history pools draw random numbers per
    # rank, so they are off here (pool_size 0: D sees the newest fakes, as in the single process)
    "cyclegan_photo2transformed": Case(4, 2, ["--model.init_args.pool_size=0"]),
    # growing networks: 32-image phases (2 global batches), so the 6 batches train 4 px, fade in 8 px and
    # stabilise it while the 16 and 32 px layers stay unused (no gradient on any rank). Minibatch stddev is
    # off: its groups are strided over the batch, so b samples per rank group differently from 2b.
    "progan_digits": Case(6, 8, ["--model.init_args.kimg_per_phase=0.032",
                                 "--model.init_args.discriminator.init_args.mbstd_group_size=0"]),
    # per-resolution batch sizes (per process, so the single process gets twice each): every epoch is
    # rebuilt at the smallest size its stages reach (2 a rank here, below the datamodule's 8), with as
    # many batches as at 8, which the sampler fills by cycling permutations, sharded over the ranks.
    # 8-image phases: 4 px, the 8 px fade and its stabilisation in 6 batches of 4 images (not 6 of 16).
    "progan_digits_batch_sizes": Case(
        6, 8, ["--model.init_args.kimg_per_phase=0.008", "--model.init_args.discriminator.init_args.mbstd_group_size=0",
               "--trainer.reload_dataloaders_every_n_epochs=1"],
        preset="progan_digits", scaled=lambda k: [f"--model.init_args.batch_sizes={{4: {4 * k}, 8: {2 * k}}}"],
        images=6 * 4),
    # text-to-image: no batch norm (per-rank statistics), an even per-rank batch (the mismatched captions
    # pair rows i and i xor 1, which stay within a rank's block)
    "stackgan_stage1_shapes": Case(4, 4, [f"--model.init_args.{net}.init_args.{key}={value}"
                                          for net in ("generator", "discriminator")
                                          for key, value in (("norm", "none"), ("base_channels", 8))]),
    # the total batch stated once (data.total_batch_size 16: one process of 16, or 2 of 8 whatever the
    # per-process batch_size says) and the stop in images seen (max_kimg 0.064): both runs end after 4
    # steps with 64 images, with R3GAN's kimg schedules (over 32 images here) at the same values
    "r3gan_digits_total_batch_kimg": Case(
        10, 8, ["--data.init_args.total_batch_size=16", "--model.init_args.max_kimg=0.064",
                "--model.init_args.decay_kimg=0.032"], preset="r3gan_digits", images=64),
    # discriminator augmentation: each rank augments its block of the global batch with the draws one
    # process makes; ADA's sign statistics are all-reduced, so p (adjusted every 2 steps by 32 images over
    # ada_kimg 0.01: clamped to 0 or 1 by each adjustment, 1 at the end here) is the same on both ranks and
    # in the single process.
    # No batch norm (per-rank statistics), narrow networks. Adam's eps is raised to 1e-3: with DiffAugment
    # about a fifth of G's gradient entries are below 1e-9, where the rounding of a 2-rank sum can flip
    # their sign and Adam (g / sqrt(v)) turns that into a whole lr step (measured 1.1e-4 after 6 batches
    # with eps 1e-8, while the gradients of 1 and 2 processes agree to 1e-6 relative).
    **{f"dcgan_digits_{augment}": Case(
        6, 8, [f"--model.init_args.augment={augment}", "--model.init_args.ada_interval=2",
               "--model.init_args.ada_kimg=0.01", "--model.init_args.r1_gamma=0.1", "--model.init_args.reg_interval=2",
               "--model.init_args.g_optimizer.init_args.eps=0.001", "--model.init_args.d_optimizer.init_args.eps=0.001",
               *[f"--model.init_args.{net}.init_args.{key}={value}" for net in ("generator", "discriminator")
                 for key, value in (("norm", "none"), ("base_channels", 8))]],
        preset="dcgan_digits") for augment in ("ada", "diffaugment")},
    # nearest-neighbour + conv upsampling with gated-shortcut stages (the gates' 1x1 convolutions and the
    # shortcuts' all-reduced like any weight); no batch norm in either network (per-rank statistics)
    "dcgan_nearest_digits": Case(4, 8, ["--model.init_args.generator.init_args.block=gated",
                                        *[f"--model.init_args.{net}.init_args.{key}={value}"
                                          for net in ("generator", "discriminator")
                                          for key, value in (("norm", "none"), ("base_channels", 8))]]),
    # class-conditional: the labels of each rank's block reach both networks (projection discriminators).
    # StyleGAN: minibatch stddev off (strided groups, as above), style mixing off (its second latent is
    # drawn per rank), and w̄ frozen (w_avg_beta 1: each rank tracks w̄ from its own block, as stylegan2-ada,
    # which the single process cannot reproduce; it does not enter the training step without truncation).
    # SGD instead of the preset's Adam(0.0025, betas (0, 0.99)): with beta1 0 Adam's first steps are about
    # lr * sign(gradient), so a rounding-level difference in a near-zero entry moves a weight by up to 2 lr
    # (measured 9e-3 after 4 batches); with SGD the two runs agree within 1.2e-7.
    "stylegan_cond_digits": Case(4, 8, STYLEGAN_DDP),
    "r3gan_cond_digits": Case(4, 8, []),
    # the unconditional StyleGAN2 and StyleGAN (v1, AdaIN) digits presets, with the same three settings
    **{stem: Case(4, 8, STYLEGAN_DDP)
       for stem in ("stylegan_digits", "stylegan_v1_digits")},
}
# Weight tolerance per preset. Adam divides each gradient entry by its running RMS, so a rounding-level
# difference in a near-zero gradient entry (the sum over 2 ranks vs over one batch of 2b) can move that
# weight by a visible fraction of one step (lr 2e-4); CycleGAN's cycle loss has many such entries.
# Measured: at most 7.4e-6 on 5 of CycleGAN's 70 tensors after 4 batches (all others within 2e-6).
# StackGAN Stage-I: at most 6.1e-6 on D's joint convolution after 4 batches, all other tensors within 1e-7.
# ProgressiveGAN resets Adam at every phase start (every 2 batches here), and each first step after a reset
# divides by a one-step RMS: measured at most 2.9e-5 (progan_digits, lr 1e-3) and 1.0e-5 (batch_sizes case).
ATOL = {"cyclegan_photo2transformed": 2e-5, "stackgan_stage1_shapes": 2e-5, "progan_digits": 5e-5,
        "progan_digits_batch_sizes": 5e-5}


def _workers(tmp: Path, strategy: str, devices: int, batch_factor: int) -> None:
    """Every case's fit, one after the other in one launch (ddp_worker.py --jobs): the processes start once."""
    jobs = [[str(ROOT / "configs" / f"{case.preset or name}.yaml"), str(tmp / name / strategy), strategy, str(devices),
             str(batch_factor * case.b), str(case.batches), *case.overrides,
             *(case.scaled(batch_factor) if case.scaled else [])] for name, case in CASES.items()]
    spec = tmp / f"jobs_{strategy}.json"
    spec.write_text(json.dumps(jobs))
    proc = subprocess.run([sys.executable, str(WORKER), "--jobs", str(spec)],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("ddp_equality")
    _workers(tmp, "auto", 1, 2)  # one process, batch 2b
    _workers(tmp, "ddp", 2, 1)  # two processes, batch b each
    return tmp


@pytest.mark.parametrize("preset", list(CASES))
def test_ddp_step_equals_single_process_step_with_twice_the_batch(ddp_runs, preset):
    single = torch.load(ddp_runs / preset / "auto" / "rank0.pt", weights_only=True)
    ranks = [torch.load(ddp_runs / preset / "ddp" / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert single["counters"] == ranks[0]["counters"] == ranks[1]["counters"]
    assert single["counters"][0] >= 1  # both players stepped
    if CASES[preset].images is not None:
        assert single["counters"][2] == CASES[preset].images
    for key, value in single["state"].items():
        torch.testing.assert_close(ranks[1]["state"][key], ranks[0]["state"][key], rtol=0, atol=0, msg=key)
        torch.testing.assert_close(ranks[0]["state"][key], value, rtol=1e-4, atol=ATOL.get(preset, 2e-6), msg=key)


def test_train_py_ddp_fit_writes_files_once_and_resumes(tmp_path):
    common = ["--config", str(ROOT / "configs" / "gan_mlp_toy_ring.yaml"), f"--trainer.default_root_dir={tmp_path}",
              "--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp",
              "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
              "--trainer.check_val_every_n_epoch=1000", "--data.init_args.batch_size=32",
              "--trainer.callbacks=[]", "--trainer.callbacks+=callbacks.SampleGrid",
              "--trainer.callbacks.every_n_generator_steps=2", "--trainer.callbacks+=callbacks.GenerativeMetrics",
              "--trainer.callbacks.metrics=[modes]", "--trainer.callbacks.num_samples=200",
              "--trainer.callbacks.every_n_generator_steps=2"]
    run = [sys.executable, str(ROOT / "train.py"), "fit", *common]
    proc = subprocess.run([*run, "--model.init_args.max_generator_steps=4"], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["gan"]["generator_steps"] == 4 and ckpt["gan"]["images_seen"] == 4 * 64  # both ranks' images
    per_rank = ckpt["gan"]["rng_per_rank"]
    assert len(per_rank) == 2 and not torch.equal(per_rank[0]["torch"], per_rank[1]["torch"])  # own latents
    assert sorted(p.name for p in (tmp_path / "samples").glob("*.png")) == ["last.png", "step_0000002.png",
                                                                          "step_0000004.png"]
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["generator_steps"] for line in lines] == [2, 4]  # rank 0 alone writes

    proc = subprocess.run([*run, "--model.init_args.max_generator_steps=6", "--ckpt_path=last"], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    resumed = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["gan"]["generator_steps"] == 6 and resumed["gan"]["images_seen"] == 6 * 64


def test_plain_ddp_in_python_names_the_fix(tmp_path):
    script = (
        "import sys; sys.path.insert(0, 'tests')\n"
        "import lightning as L\n"
        "from conftest import toy_gan, toy_data\n"
        f"t = L.Trainer(strategy='ddp', devices=1, accelerator='cpu', logger=False, enable_checkpointing=False,"
        f" default_root_dir={str(tmp_path)!r}, max_steps=2)\n"
        "t.fit(toy_gan(), toy_data())\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert "GANDDPStrategy" in proc.stderr and "ddp_find_unused_parameters_true" in proc.stderr
