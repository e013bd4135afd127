"""What a GANModule writes into and reads from a checkpoint beyond the weights and optimizers.

:class:`CheckpointStateMixin` is a base of :class:`~gan_modules.base.GANModule`: the ``"gan"`` entry of a
checkpoint (the counters, the global RNG state of every rank, the 16-mixed skip counts and what
``gan_modules.load_generator`` needs to rebuild the sampling generator), and the restore of the RNG
state when training starts, after the sanity check, so a resumed run draws the same random numbers as
the uninterrupted one. Families that keep more state extend the two hooks and call ``super()``.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from gan_modules.training_state import restore_rng, rng_state


class CheckpointStateMixin:
    """The checkpoint hooks of :class:`~gan_modules.base.GANModule` (see the module docstring)."""

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # LightningCLI re-reads these with --ckpt_path; a model built in Python must still name its class
        hparams = checkpoint.setdefault("hyper_parameters", {})
        hparams.setdefault("_class_path", f"{type(self).__module__}.{type(self).__qualname__}")
        spec = getattr(self.sampling_network(), "init_spec", None)
        checkpoint["gan"] = {
            "generator_steps": self.generator_steps,
            "discriminator_steps": self.discriminator_steps,
            "images_seen": self.images_seen,
            "rng": rng_state(),
            "rng_per_rank": self._gather_rng_states(),
            "amp_skipped_steps": {i: int(n) for i, n in self._amp_skipped.items()},
            "generator_spec": spec,
            "generator_key": "generator_ema" if self.generator_ema is not None else "generator",
            "latent_dim": self.latent_dim,
            "num_classes": self.num_classes,
            "sample_shape": list(self.sample_shape),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("gan")
        if state is None:
            raise KeyError("checkpoint has no 'gan' entry: it was not written by a GANModule")
        self.generator_steps = int(state["generator_steps"])
        self.discriminator_steps = int(state["discriminator_steps"])
        self.images_seen = int(state["images_seen"])
        self._amp_skipped = {int(i): torch.tensor(n) for i, n in state.get("amp_skipped_steps", {}).items()}
        # Applied when training starts, after the sanity check, so a resumed run draws the same
        # random numbers as the uninterrupted one. Under DDP each rank gets back its own state.
        self._pending_rng_state = state.get("rng")
        self._pending_rng_per_rank = state.get("rng_per_rank")

    def _gather_rng_states(self) -> list[dict[str, Any]] | None:
        # on_save_checkpoint runs on every rank (rank 0 writes), so this collective is safe here
        if self._trainer is None or self.trainer.world_size == 1 or not torch.distributed.is_initialized():
            return None
        states: list[Any] = [None] * self.trainer.world_size
        torch.distributed.all_gather_object(states, rng_state())
        return states

    def _restore_pending_rng(self) -> None:
        """Applies the RNG state read by ``on_load_checkpoint`` (each rank its own under DDP); called
        from ``on_train_start``."""
        message = restore_rng(self.trainer.global_rank, self.trainer.world_size, self._pending_rng_state,
                              self._pending_rng_per_rank)
        if message is not None:
            warnings.warn(message, stacklevel=3)
        self._pending_rng_state = self._pending_rng_per_rank = None
