"""TranslationModule: what the image-to-image families (pix2pix, CycleGAN, SRGAN, inpainting) share.

A translation family's generator maps a batch's input (``batch["input"]``, or ``batch["A"]``) to an
image shaped like its target (``batch["target"]``, or ``batch["B"]``); there is no latent (the
networks have ``latent_dim = 0``), so noise-to-image pieces of :class:`~gan_modules.base.GANModule`
are replaced here:

* ``real_samples`` / ``inputs_of`` read the batch keys, shape-checked against the generator's
  ``sample_shape`` and ``input_shape``; ``batch_size_of`` counts inputs;
* ``translate(batch)`` runs the EMA generator when there is one, in eval mode (a U-Net's dropout
  stays on, see :class:`~gan_modules.nets.unet.AlwaysDropout`);
* sample grids (``grid_images``) show rows of input | output | target for a fixed batch of
  validation items captured once when training starts (from the datamodule's validation loader,
  else from the first training batch) and kept in the checkpoint, so a resumed run shows the same
  inputs. Inputs of another size or channel count are shown resized (nearest) and grey inputs
  repeated to RGB;
* validation logs ``val/l1``, ``val/psnr`` (dB, per image, averaged) and ``val/D/real``, ``val/D/fake``;
* ``metric_pairs(batch, seed)`` gives ``callbacks.GenerativeMetrics`` the (translation, target) pairs
  it scores with FID/KID on the test split;
* ``predict_step`` returns ``{"index", "image"}`` (the translations of the predict inputs) for
  ``ImageWriter``.

Random draws at inference (dropout) are seeded: grids by ``sample_seed``, validation by the batch
index, predictions by the first index of the batch, so files and logs are reproducible.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader
from torchmetrics.functional.image import peak_signal_noise_ratio

from gan_modules.base import GANModule
from gan_modules.losses import get_loss
from gan_modules.training_state import rng_state, set_rng_state


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Runs the body with torch's CPU (and current CUDA device's) RNG seeded, restoring them after."""
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.default_generator.manual_seed(seed)
        if devices:
            torch.cuda.manual_seed(seed)
        yield


def psnr(images: Tensor, targets: Tensor) -> Tensor:
    """Mean per-image PSNR in dB of images in ``[-1, 1]`` (data range 2)."""
    return peak_signal_noise_ratio(images.float(), targets.float(), data_range=2.0, dim=(1, 2, 3))


def display_columns(columns: list[Tensor]) -> Tensor:
    """Puts image columns ``[N, C_i, H_i, W_i]`` side by side: ``[N * len(columns), C, H, W]``, row-major.

    Every column is brought to the last column's size (nearest, so upsampled low-res inputs show
    their pixels) and to 3 channels when any column has 3 or more (1 channel is repeated; extra
    channels are dropped; 2 channels get a zero third).
    """
    size = columns[-1].shape[-2:]
    channels = 3 if max(c.shape[1] for c in columns) >= 3 else 1
    shown = []
    for images in columns:
        images = images.float()
        if images.shape[-2:] != size:
            images = F.interpolate(images, size=tuple(size), mode="nearest")
        if images.shape[1] == 1 and channels == 3:
            images = images.expand(-1, 3, -1, -1)
        elif images.shape[1] > channels:
            images = images[:, :channels]
        elif images.shape[1] < channels:
            images = torch.cat([images, images.new_zeros(len(images), channels - images.shape[1], *size)], 1)
        shown.append(images)
    return torch.stack(shown, dim=1).flatten(0, 1)


class TranslationModule(GANModule):
    """The image-to-image base: batch keys, fixed grid batch, translate, validation and predict.

    Subclasses set ``input_key`` / ``target_key`` (and ``extra_keys`` such as ``"mask"``) and supply
    ``generator_loss`` (and ``discriminator_loss`` where D's step is not the paired one here); ``generate_from(batch, net)`` says how a generator
    reads a batch (the default: ``net(batch[input_key])``).

    Args:
        generator: ``input [N, *input_shape] -> output [N, *sample_shape]``; must expose
            ``input_shape`` (see ``gan_modules.nets.ImageToImageNetwork``).
        discriminator: ``output [N, *sample_shape]`` (and ``condition`` = the input when it has
            ``conditional = True``) ``-> logits``.
        loss: adversarial loss name (``nonsaturating``: the cross-entropy of pix2pix, SRGAN and the
            context encoder; lsgan, hinge, ...).
        num_fixed_samples: rows of the sample grid (8 by default).
        Other arguments: see :class:`gan_modules.base.GANModule`.
    """

    input_key = "input"
    target_key = "target"
    extra_keys: tuple[str, ...] = ()

    augment_supported = False  # D-input augmentation (augment) is for the noise-to-image families

    def __init__(self, generator: nn.Module, discriminator: nn.Module, loss: str = "nonsaturating",
                 num_fixed_samples: int = 8, **kwargs: Any) -> None:
        super().__init__(generator, discriminator, num_fixed_samples=num_fixed_samples, **kwargs)
        self.adversarial = get_loss(loss)
        if getattr(generator, "input_shape", None) is None:
            raise TypeError(f"{type(self).__name__} needs an image-to-image generator with an 'input_shape' "
                            f"attribute (gan_modules.nets.UNetGenerator, ...), got {type(generator).__name__}")
        self.input_shape = tuple(generator.input_shape)
        self.num_fixed_samples = num_fixed_samples
        # Plain tensors saved in on_save_checkpoint rather than buffers: a buffer is broadcast by DDP
        # every step and would need resizing before load_state_dict (its size is the data's).
        self.fixed_batch: dict[str, Tensor] = {}

    # ---------------------------------------------------------------------------------------- batches

    def _get(self, batch: dict[str, Tensor], key: str) -> Tensor:
        if key not in batch:
            keys = ", ".join([self.input_key, self.target_key, *self.extra_keys])
            raise KeyError(f"{type(self).__name__} reads batches with keys {keys}; this batch has "
                           f"{', '.join(map(str, batch))} (use a paired or unpaired image datamodule)")
        return batch[key]

    def inputs_of(self, batch: dict[str, Tensor]) -> Tensor:
        """The batch's inputs ``[N, *input_shape]``, shape-checked against the generator's."""
        inputs = self._get(batch, self.input_key)
        if tuple(inputs.shape[1:]) != self.input_shape:
            raise ValueError(f"data gives '{self.input_key}' of shape {tuple(inputs.shape[1:])} but the generator "
                             f"reads {self.input_shape}; link or set the network's input_shape to the data's")
        return inputs

    def real_samples(self, batch: dict[str, Tensor]) -> Tensor:
        """The batch's targets ``[N, *sample_shape]``, shape-checked against the generator's output."""
        real = self._get(batch, self.target_key)
        if tuple(real.shape[1:]) != self.sample_shape:
            raise ValueError(f"data gives '{self.target_key}' of shape {tuple(real.shape[1:])} but the generator "
                             f"makes {self.sample_shape}; link or set the network's sample_shape to the data's")
        return real

    def batch_size_of(self, batch: dict[str, Tensor]) -> int:
        return int(self._get(batch, self.input_key).shape[0])

    # ------------------------------------------------------------------------------------- generation

    def generate_from(self, batch: dict[str, Tensor], net: nn.Module) -> Tensor:
        """Runs a generator on a batch's inputs (with gradients when the caller has them on)."""
        return net(self.inputs_of(batch))

    def judge(self, images: Tensor, batch: dict[str, Tensor]) -> Tensor:
        """Discriminator logits for ``images``, conditioned on the batch's inputs when D is conditional."""
        if getattr(self.discriminator, "conditional", False):
            return self.discriminator(images, self.inputs_of(batch))
        return self.discriminator(images)

    def discriminator_loss(self, batch: dict[str, Tensor], reg_weight: float) -> dict[str, Tensor]:
        """``loss.d(D(target), D(G(input)))`` (D conditioned on the input when it is conditional), with
        ``D/real`` and ``D/fake`` (the mean logits); the paired families' discriminator step."""
        real = self.real_samples(batch)
        with torch.no_grad():  # D's step trains D only
            fake = self.generate_from(batch, self.generator)
        real_logits, fake_logits = self.judge(real, batch), self.judge(fake, batch)
        return {"loss": self.adversarial.d(real_logits, fake_logits),
                "D/real": real_logits.detach().mean(), "D/fake": fake_logits.detach().mean()}

    @torch.no_grad()
    def run_eval(self, net: nn.Module, *args: Tensor) -> Tensor:
        """``net(*args)`` without gradients, in eval mode (restored after)."""
        was_training = net.training
        net.eval()
        try:
            return net(*args)
        finally:
            net.train(was_training)

    @torch.no_grad()
    def translate(self, batch: dict[str, Tensor], net: nn.Module | None = None) -> Tensor:
        """Outputs ``[N, *sample_shape]`` for a batch, from the EMA generator (if any) in eval mode."""
        net = self.sampling_network() if net is None else net
        batch = {k: v.to(self.device) if isinstance(v, Tensor) else v for k, v in batch.items()}
        was_training = net.training
        net.eval()
        try:
            return self.generate_from(batch, net)
        finally:
            net.train(was_training)

    def sample(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None,
               z: Tensor | None = None) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} translates images and has no latent to sample: "
                                  "use translate(batch) (callbacks that sample noise do not apply)")

    # ------------------------------------------------------------------------------------ sample grid

    def capture_fixed_batch(self, batch: dict[str, Tensor]) -> None:
        """Keeps the first ``num_fixed_samples`` items of ``batch`` as the grid's fixed batch."""
        keys = [k for k in (self.input_key, self.target_key, *self.extra_keys) if k in batch]
        self.fixed_batch = {k: batch[k][: self.num_fixed_samples].detach().clone() for k in keys}

    def _validation_batch(self) -> dict[str, Tensor] | None:
        """The first ``num_fixed_samples`` validation items from the datamodule, or None without one."""
        datamodule = getattr(self.trainer, "datamodule", None)
        loader_fn = getattr(datamodule, "val_dataloader", None)
        if loader_fn is None:
            return None
        state = rng_state()  # building a loader must not move the training run's random streams
        try:
            loader = loader_fn()
            if not isinstance(loader, DataLoader):
                return None
            parts: list[dict[str, Tensor]] = []
            count = 0
            for batch in loader:
                parts.append(batch)
                count += self.batch_size_of(batch)
                if count >= self.num_fixed_samples:
                    break
        finally:
            set_rng_state(state)
        if not parts:
            return None
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0] if isinstance(parts[0][k], Tensor)}

    def on_train_start(self) -> None:
        super().on_train_start()
        if not self.fixed_batch:
            batch = self._validation_batch()
            if batch is not None:
                self.capture_fixed_batch(batch)

    def on_train_batch_start(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        if not self.fixed_batch:  # no validation data: the first training batch is the fixed one
            self.capture_fixed_batch(batch)

    def grid_columns(self, batch: dict[str, Tensor]) -> list[Tensor]:
        """The grid's columns for a batch: input, output, target."""
        columns = [self.inputs_of(batch), self.translate(batch)]
        if self.target_key in batch:
            columns.append(self.real_samples(batch))
        return columns

    def grid_images(self) -> tuple[Tensor, int | None]:
        """Rows of input | output | target for the fixed batch; ``(images, images per row)``."""
        if not self.fixed_batch:
            raise RuntimeError(f"{type(self).__name__}: no fixed batch yet; it is captured when training starts "
                               "(or call capture_fixed_batch(batch))")
        batch = {k: v.to(self.device) for k, v in self.fixed_batch.items()}
        with seeded(self.sample_seed):
            columns = self.grid_columns(batch)
        return display_columns(columns), len(columns)

    # ---------------------------------------------------------------------- validation and prediction

    def _evaluation_step(self, batch: dict[str, Tensor], batch_idx: int, prefix: str) -> None:
        with seeded(self.sample_seed * 100_003 + batch_idx):
            fake = self.translate(batch)
        real = self.real_samples(batch)
        self.log_dict({f"{prefix}/l1": F.l1_loss(fake.float(), real.float()), f"{prefix}/psnr": psnr(fake, real),
                       f"{prefix}/D/real": self.judge(real, batch).float().mean(),
                       f"{prefix}/D/fake": self.judge(fake, batch).float().mean()}, batch_size=len(real))

    def metric_pairs(self, batch: dict[str, Tensor], seed: int) -> dict[str, tuple[Tensor, Tensor]]:
        """Generated and real images per direction, for ``callbacks.GenerativeMetrics`` (FID/KID of a test split).

        Args:
            batch: a test batch on the module's device.
            seed: seeds the translation's random draws (dropout), so an evaluation is reproducible.

        Returns:
            ``{"": (translations [N, *sample_shape], targets [N, *sample_shape])}``; the key names the
            direction (``""``: the family's own, logged as ``metrics/<name>``).
        """
        with seeded(seed):
            fake = self.translate(batch)
        return {"": (fake, self.real_samples(batch))}

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        """``{"index", "image"}``: the translation of each predict input (seeded by the batch's first index)."""
        indices = batch["index"]
        with seeded(self.sample_seed * 1_000_003 + int(indices[0])):
            images = self.translate(batch)
        return {"index": indices, "image": images}

    # ------------------------------------------------------------------------------------ checkpoints

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["translation"] = {"fixed_batch": {k: v.detach().cpu() for k, v in self.fixed_batch.items()},
                                     "input_shape": list(self.input_shape)}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get("translation", {})
        self.fixed_batch = {k: v.clone() for k, v in state.get("fixed_batch", {}).items()}
