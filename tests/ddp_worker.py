"""Runs a preset for a few steps, single-process or on 2 CPU processes, with controlled randomness.

Used by tests/test_ddp.py and benchmarks/ddp.py. Lightning's DDP launcher re-runs this script once
per extra process, so it must be a script, not a pytest function. Usage::

    python tests/ddp_worker.py <preset.yaml> <out_dir> <strategy> <devices> <batch_size> <batches> [overrides...]
    python tests/ddp_worker.py --jobs <jobs.json>

The second form runs several such fits one after the other in the same processes (a JSON list of
the first form's argument lists, all with the same strategy and devices): the interpreter and
Lightning start once (about 10 s a process on 2 cores), and the process group is made by the first
fit and reused by the others.

Randomness is made rank-independent so that one DDP step over R processes with per-rank batch b does
the same arithmetic as one single-process step with batch R*b:

* latents: each call draws the GLOBAL batch of latents from a generator seeded by a call counter
  and keeps this rank's block (rank r: rows r*b..(r+1)*b), which is what the single process draws;
* the gradient penalty's interpolation weights (GAN, ProgressiveGAN): the same, by advancing a seeded generator past the other ranks' draws;
* StyleGAN's per-layer noise maps: like the latents, the global batch's maps drawn, this rank's block kept;
* data: ``EpochShuffleSampler`` gives rank r block r of each global batch.
* discriminator augmentation (``augment``) needs nothing here: it draws the global batch's numbers
  from step-seeded generators and keeps this rank's rows by design (``gan_modules/augment.py``).

Each rank writes ``<out_dir>/rank<r>.pt`` (the module's state dict and the step's timings).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import lightning as L
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import gan_modules.gan as gan_module  # noqa: E402
import gan_modules.nets.stylegan_layers as stylegan_layers  # noqa: E402
import gan_modules.progressive as progressive_module  # noqa: E402
from datamodules.base import GANDataModule  # noqa: E402
from gan_modules.base import GANModule  # noqa: E402
from train import GANCLI  # noqa: E402

_original_latents = GANModule.latents
_original_gp = gan_module.gradient_penalty
_original_noise = stylegan_layers.NoiseInput.forward


def _rank_world(module: GANModule) -> tuple[int, int]:
    return module.trainer.global_rank, module.trainer.world_size


def controlled_latents(self: GANModule, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    if generator is not None or self._trainer is None or not self.trainer.training:
        return _original_latents(self, n, generator)
    rank, world = _rank_world(self)
    self._test_calls = getattr(self, "_test_calls", 0) + 1
    full = torch.randn(n * world, self.latent_dim, generator=torch.Generator().manual_seed(self._test_calls))
    return full[rank * n:(rank + 1) * n].to(self.device)


def install_controlled_randomness() -> None:
    """Patches the latents and the GP's interpolation weights to the rank-independent draws."""
    GANModule.latents = controlled_latents
    counter = {"calls": 0}

    def controlled_gp(discriminator, real, fake, generator=None, scale=1.0):  # noqa: ANN001, ANN202
        counter["calls"] += 1
        rank, world = (torch.distributed.get_rank(), torch.distributed.get_world_size()) \
            if torch.distributed.is_initialized() else (0, 1)
        seeded = torch.Generator().manual_seed(10_000 + counter["calls"])
        if rank:
            torch.rand(rank * len(real), generator=seeded)  # uniform draws are sequential: skip the other ranks'
        return _original_gp(discriminator, real, fake, generator=seeded, scale=scale)

    gan_module.gradient_penalty = controlled_gp
    progressive_module.gradient_penalty = controlled_gp

    def controlled_noise(self, x, noise_mode):  # noqa: ANN001, ANN202 (NoiseInput.forward)
        if noise_mode != "random":
            return _original_noise(self, x, noise_mode)
        counter["noise"] = counter.get("noise", 0) + 1
        rank, world = (torch.distributed.get_rank(), torch.distributed.get_world_size()) \
            if torch.distributed.is_initialized() else (0, 1)
        n = x.shape[0]
        seeded = torch.Generator().manual_seed(20_000 + counter["noise"])
        full = torch.randn(n * world, 1, x.shape[2], x.shape[3], generator=seeded)
        noise = full[rank * n:(rank + 1) * n].to(x.device, x.dtype)
        return x + noise * self.strength[None, :, None, None]

    stylegan_layers.NoiseInput.forward = controlled_noise


class StepTimer(L.Callback):
    """Wall time of each training batch after the first two (warm-up)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        if batch_idx >= 2:
            self.times.append(time.perf_counter() - self._start)


def main(argv: list[str]) -> None:
    if argv[0] == "--jobs":
        for job in json.loads(Path(argv[1]).read_text()):
            run_one(job)
    else:
        run_one(argv)


def run_one(argv: list[str]) -> None:
    preset, out, strategy, devices, batch_size, batches, *overrides = argv
    torch.set_num_threads(1)
    install_controlled_randomness()  # fresh counters for every fit
    args = ["--config", preset, f"--trainer.default_root_dir={out}", "--trainer.accelerator=cpu",
            f"--trainer.devices={devices}", f"--trainer.strategy={strategy}", "--trainer.max_steps=-1",
            f"--trainer.limit_train_batches={batches}", "--trainer.max_epochs=1", "--trainer.logger=false",
            "--trainer.enable_checkpointing=false", "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false", "--trainer.limit_val_batches=0", "--trainer.callbacks=[]",
            f"--data.init_args.batch_size={batch_size}", "--model.init_args.max_generator_steps=null", *overrides]
    cli = GANCLI(GANModule, GANDataModule, subclass_mode_model=True, subclass_mode_data=True,
                 auto_configure_optimizers=False, run=False, args=args, save_config_callback=None)
    timer = StepTimer()
    cli.trainer.callbacks.append(timer)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    rank = cli.trainer.global_rank
    Path(out).mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() if isinstance(v, torch.Tensor) else v  # progressive nets: extra state
             for k, v in cli.model.state_dict().items()}
    torch.save({"state": state, "times": timer.times, "counters": [cli.model.generator_steps,
                cli.model.discriminator_steps, cli.model.images_seen]}, Path(out) / f"rank{rank}.pt")
    if rank == 0:
        (Path(out) / "done.json").write_text(json.dumps({"world": cli.trainer.world_size}))


if __name__ == "__main__":
    main(sys.argv[1:])
