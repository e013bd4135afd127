"""The discriminator-input augmentation a GAN module owns: the pipeline, ADA's adaptive p, its seeding.

:class:`DiscriminatorAugment` is a plain ``nn.Module`` (no Lightning; ``GANModule(augment=...)`` holds
one as ``augmenter``) that another training loop can use as it is:

* ``augmenter(x, step)`` augments a batch ``[N, C, H, W]`` with DiffAugment or ADA
  (:mod:`gan_modules.augment`), its random numbers drawn from a generator seeded by the
  augmenter's ``seed`` buffer, the caller's ``step`` (a tuple of counters) and the call's index within
  that step. Nothing comes from the global RNG, so the draws of a resumed run are those of an
  uninterrupted one, and with ``block=(rank, world)`` every process augments its rows of the global
  batch exactly as one process would.
* ADA (Karras et al. 2020, stylegan2-ada-pytorch ``training/training_loop.py``): the loop calls
  ``observe(real_logits)`` in each discriminator step and ``adjust(...)`` after it; every ``interval``
  discriminator steps ``r_t = E[sign(D(real))]`` over the images seen since the last adjustment
  moves ``p`` by ``sign(r_t - target) * images / (kimg * 1000)``, clamped to ``[0, 1]``: ``p`` can go
  from 0 to 1 in ``kimg`` thousand images. The official default is ``kimg = 500`` for runs of tens of
  thousands of kimg; the default here, 100, lets ``p`` react within the few hundred kimg of a short run.
  ``p`` and the running sums are buffers (in checkpoints); the sums are all-reduced over processes
  every step (two numbers), so ``p`` is the same on every rank and a checkpoint holds the global sums.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from gan_modules.augment import AUGMENTS, ada_augment, diffaugment, parse_policy

__all__ = ["DiscriminatorAugment"]


class DiscriminatorAugment(nn.Module):
    """DiffAugment or ADA on the discriminator's inputs, with ADA's adaptive probability.

    Args:
        kind: ``"diffaugment"`` or ``"ada"`` (``"none"`` needs no augmenter).
        policy: DiffAugment's operations, comma-separated (``color,translation,cutout``).
        target: ADA's target for ``r_t = E[sign(D(real))]`` (0.6 in the paper).
        interval: discriminator steps between two adjustments of ``p``.
        kimg: thousands of images over which ``p`` can move by 1.
        seed: base seed of the augmentation draws.
        initial_p: ADA's probability at the start (0 in the paper: ``p`` grows when D overfits).
    """

    def __init__(self, kind: str = "ada", policy: str = "color,translation,cutout", target: float = 0.6,
                 interval: int = 4, kimg: float = 100.0, seed: int = 0, initial_p: float = 0.0) -> None:
        super().__init__()
        if kind not in AUGMENTS or kind == "none":
            raise ValueError(f"augment must be one of {', '.join(AUGMENTS)}, got '{kind}'")
        if interval < 1:
            raise ValueError(f"ada_interval must be >= 1, got {interval}")
        if kimg <= 0:
            raise ValueError(f"ada_kimg must be > 0, got {kimg}")
        if not 0.0 <= initial_p <= 1.0:
            raise ValueError(f"initial p must be in [0, 1], got {initial_p}")
        self.kind, self.target, self.interval, self.kimg = kind, float(target), int(interval), float(kimg)
        self.policy = parse_policy(policy)
        self.register_buffer("seed", torch.tensor(int(seed), dtype=torch.int64))
        # the probability and [sum of sign(D(real)) per sample, images] since the last adjustment
        self.register_buffer("p", torch.tensor(float(initial_p)))
        self.register_buffer("stats", torch.zeros(2))
        self.register_buffer("rt", torch.tensor(0.0))
        self._pending: Tensor | None = None
        self._observed = False
        self._step_key: tuple[int, ...] | None = None
        self._calls = 0
        self._seed_int: int | None = None
        self.register_load_state_dict_post_hook(lambda module, keys: setattr(module, "_seed_int", None))

    def _generator(self, step: tuple[int, ...]) -> torch.Generator:
        """A CPU generator for the next call within ``step`` (calls are counted from 0 in each step)."""
        if step != self._step_key:
            self._step_key, self._calls = step, 0
        if self._seed_int is None:
            self._seed_int = int(self.seed)  # read once (and after a load), not on every call
        mixed = self._seed_int
        for value in (*step, self._calls):
            mixed = (mixed * 1_000_003 + int(value)) % (2**63 - 1)
        self._calls += 1
        return torch.Generator().manual_seed(mixed)

    def forward(self, x: Tensor, step: tuple[int, ...] = (0,), block: tuple[int, int] = (0, 1)) -> Tensor:
        """Augments ``x [N, C, H, W]`` in ``[-1, 1]``; returns the same shape and range.

        Args:
            x: images (real or generated).
            step: counters naming the training step (e.g. discriminator and generator steps); the
                draws depend on them and on how many calls this step has made before.
            block: ``(rank, world)``: ``x`` is block ``rank`` of the global batch.
        """
        generator = self._generator(tuple(int(v) for v in step))
        if self.kind == "diffaugment":
            return diffaugment(x, self.policy, generator=generator, block=block)
        return ada_augment(x, self.p, generator=generator, block=block)

    def observe(self, real_logits: Tensor) -> None:
        """Records ``sign(D(real))`` of one discriminator step (a patch map's signs averaged per sample)."""
        if self.kind != "ada":
            return
        signs = torch.sign(real_logits.detach().float()).reshape(len(real_logits), -1).mean(dim=1)
        step = torch.stack([signs.sum(), torch.tensor(float(len(signs)), device=signs.device)])
        self._pending = step if self._pending is None else self._pending + step
        self._observed = True

    def adjust(self, discriminator_steps: int, all_reduce: Callable[[Tensor], Tensor] | None = None,
               family: str = "this family") -> dict[str, Tensor]:
        """Called after each discriminator step: adds the step's (globally reduced) statistics and, every
        ``interval`` steps, moves ``p``. Returns the log values ``augment/p`` and ``augment/rt``.

        Args:
            discriminator_steps: the discriminator steps taken so far, this one included.
            all_reduce: sums a tensor over processes (None: one process).
            family: named in the error raised when no real logits were observed.
        """
        if self.kind != "ada":
            return {}
        if not self._observed:
            raise RuntimeError(f"augment: ada needs D's logits on the reals each discriminator step, and {family} "
                               "did not report them (GANModule.observe_real_logits in its discriminator_loss)")
        step = self._pending.to(self.stats.device)
        self._pending, self._observed = None, False
        if all_reduce is not None:
            step = all_reduce(step)
        self.stats += step
        if discriminator_steps % self.interval == 0:
            signs, images = self.stats[0], self.stats[1]
            rt = signs / images.clamp(min=1.0)
            self.rt.copy_(rt)
            self.p.copy_((self.p + torch.sign(rt - self.target) * images / (self.kimg * 1000.0)).clamp(0.0, 1.0))
            self.stats.zero_()
        return {"augment/p": self.p.detach().clone(), "augment/rt": self.rt.detach().clone()}

    def extra_repr(self) -> str:
        details: dict[str, Any] = {"kind": self.kind}
        if self.kind == "diffaugment":
            details["policy"] = ",".join(self.policy)
        else:
            details.update(target=self.target, interval=self.interval, kimg=self.kimg)
        return ", ".join(f"{k}={v}" for k, v in details.items())
