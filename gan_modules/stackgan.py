"""StackGAN (Zhang et al. 2017): text-to-image in two stages with conditioning augmentation and a
matching-aware discriminator.

* Stage-I (``configs/stackgan_stage1_shapes.yaml``): ``G(z, tokens)`` draws a low-resolution image
  (32 px here) from noise and the caption's conditioning code ``c ~ N(mu(phi_t), Sigma(phi_t))``,
  ``phi_t`` the frozen text encoder's sentence embedding. The real images are box-downsampled to
  that resolution.
* Stage-II (``configs/stackgan_stage2_shapes.yaml``): a generator holding the frozen Stage-I
  generator, read from Stage-I's checkpoint, refines its image to the data's resolution (64 px),
  conditioned on the same caption through its own conditioning augmentation.

Both stages train with the same losses (the authors' ``trainer.py``): with ``r = D(x, phi)``,
``f = D(G(z, t), phi)`` and ``w = D(x, phi')``, ``phi'`` the embedding of another caption of the
batch (GAN-CLS, Reed et al. 2016: a real image with mismatched text counts as fake),

* D minimises ``adv.d(r, [f; w])``: for the non-saturating loss, ``BCE(r, 1) + (BCE(f, 0) + BCE(w, 0)) / 2``;
* G minimises ``adv.g(f) + kl_weight * KL(N(mu, Sigma) || N(0, I))`` (``kl_weight`` 2 in the paper).

``matching_weight > 0`` adds a text-image matching term to G's loss, ``matching_weight * mean(1 -
cos(E_img(G(z, t)), phi_t))``, with ``E_img`` the frozen image encoder trained with the text encoder
(the same encoders file): the generated image's embedding is pulled towards its own caption's. This is
not StackGAN's: it is the per-sample form of the sentence-level matching loss of AttnGAN (Xu et al. 2018,
DAMSM), per sample so that a DDP step equals one process (a contrastive loss over the batch would depend
on how the batch is split). It is off by default (the paper's objective).

The mismatched caption of row ``i`` is row ``i xor 1`` (neighbours swap; with an odd batch the last row
takes row 0's), so the pairing stays inside blocks of two and a DDP step with an even per-rank batch
pairs the rows as one process with the whole batch does. Batches need ``"caption_tokens"``
(``datamodules.TextImageDataModule``); the data's vocabulary must be the text encoder's.

Sampling needs captions: ``module.sample(n, labels=tokens)``, or from a checkpoint alone
``G = load_generator(path); G.sample_captions(["a small red circle at the top left"])``. Sample grids
show the first captions of the datamodule's ``val`` split; ``predict`` draws one image per caption of
the datamodule's predict split.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_modules.base import GANModule
from gan_modules.losses import get_loss
from gan_modules.nets.stackgan import TextConditionedGenerator
from gan_modules.nets.text import ImageEncoder, read_encoder_file


def mismatched_rows(n: int, device: torch.device | None = None) -> Tensor:
    """For each row of a batch of ``n``, the row whose caption it is paired with as the mismatch: ``i xor 1``
    (the last row of an odd batch takes row 0)."""
    rows = torch.arange(n, device=device) ^ 1
    if n % 2:
        rows[-1] = 0
    return rows


def matching_loss(image_embeddings: Tensor, text_embeddings: Tensor) -> Tensor:
    """``mean(1 - cos(image_i, text_i))`` over the rows: 0 when every image embedding points at its caption's."""
    return (1 - F.cosine_similarity(image_embeddings, text_embeddings, dim=1)).mean()


def _matching_image_encoder(source: str | None, generator: TextConditionedGenerator) -> ImageEncoder:
    """The frozen image encoder of an encoders file whose text encoder is ``generator``'s."""
    contents = read_encoder_file(source, option="model.init_args.matching_encoder")
    mine = generator.text_encoder.state_dict()
    theirs = contents["text_state"]
    if set(mine) != set(theirs) or any(not torch.equal(mine[k].float(), theirs[k].float()) for k in mine):
        raise ValueError(f"matching_encoder '{source or 'the packaged encoders file'}' holds another text encoder "
                         "than the generator's (generator.init_args.text_encoder): name the same encoders file in both")
    encoder = ImageEncoder(**contents["image_config"])
    encoder.load_state_dict(contents["image_state"])
    return encoder.requires_grad_(False).eval()


class StackGAN(GANModule):
    """StackGAN Stage-I or Stage-II, by the generator it is given (see the module docstring).

    Logged: ``D/real``, ``D/fake``, ``D/wrong`` (mean logits of matching real, generated and
    mismatched real pairs), ``loss/G/kl`` and, with ``matching_weight``, ``loss/G/matching``.
    Validation logs ``val/D/real``, ``val/D/fake``.

    Args:
        generator: a :class:`~gan_modules.nets.stackgan.TextConditionedGenerator`
            (``StackGANStage1Generator`` or ``StackGANStage2Generator``).
        discriminator: ``D(x, phi) -> logits [N]`` at the generator's resolution
            (``StackGANDiscriminator``).
        loss: adversarial loss by name (the paper's is ``nonsaturating``, i.e. binary cross-entropy).
        kl_weight: weight of the conditioning augmentation's KL term in G's loss.
        matching_weight: weight of the text-image matching term in G's loss (0: StackGAN's loss; see the
            module docstring).
        matching_encoder: the encoders file whose frozen image encoder the matching term uses; None for
            the packaged one. Its text encoder must be the generator's (the same file).
        **kwargs: :class:`~gan_modules.base.GANModule`'s arguments (optimizers, EMA, ...).
    """

    augment_supported = False  # D-input augmentation (augment) is for the noise-to-image families

    def __init__(self, generator: nn.Module, discriminator: nn.Module, loss: str = "nonsaturating",
                 kl_weight: float = 2.0, matching_weight: float = 0.0, matching_encoder: str | None = None,
                 **kwargs) -> None:
        if not isinstance(generator, TextConditionedGenerator):
            raise TypeError(f"StackGAN needs a text-conditioned generator (gan_modules.nets.StackGANStage1Generator "
                            f"or StackGANStage2Generator), got {type(generator).__name__}")
        super().__init__(generator, discriminator, **kwargs)
        if kl_weight < 0:
            raise ValueError(f"kl_weight must be >= 0, got {kl_weight}")
        self.adversarial = get_loss(loss)
        self.kl_weight = kl_weight
        if matching_weight < 0:
            raise ValueError(f"matching_weight must be >= 0, got {matching_weight}")
        self.matching_weight = matching_weight
        self.matching_image_encoder = _matching_image_encoder(matching_encoder, generator) if matching_weight else None

    def train(self, mode: bool = True) -> StackGAN:
        super().train(mode)
        if self.matching_image_encoder is not None:
            self.matching_image_encoder.eval()  # frozen: always in eval mode
        return self

    # ----------------------------------------------------------------------------------------------
    # Batches, sampling

    def tokens(self, batch: dict[str, Tensor]) -> Tensor:
        if "caption_tokens" not in batch:
            raise KeyError(f"StackGAN trains on captioned images: the batch has no 'caption_tokens' "
                           f"(keys: {', '.join(batch)}); use datamodules.TextImageDataModule")
        return batch["caption_tokens"]

    def real_samples(self, batch: dict[str, Tensor]) -> Tensor:
        """The batch's images, box-downsampled to the generator's resolution when the data is larger."""
        real = batch["image"]
        size = self.sample_shape[-1]
        if real.dim() == 4 and real.shape[-1] > size and real.shape[-1] % size == 0 and real.shape[-2] == real.shape[-1]:
            real = F.avg_pool2d(real, real.shape[-1] // size)
        return super().real_samples({"image": real})

    def generate(self, z: Tensor, labels: Tensor | None = None, net: nn.Module | None = None) -> Tensor:
        """Images from latents and caption tokens ``labels [N, L]`` (required)."""
        if labels is None:
            raise ValueError("StackGAN samples from captions: pass their tokens as labels "
                             "(sample(n, labels=tokens)), e.g. from generator.encode(captions)")
        net = self.generator if net is None else net
        return net(z, labels)

    def discriminate(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """D's logits ``[N]`` for images and caption tokens ``labels [N, L]``."""
        return self.discriminator(x, self.generator.embed(labels))

    def grid_images(self) -> tuple[Tensor, int | None]:
        """The fixed latents, each with one caption: the first caption of each image of the datamodule's
        ``val`` split (or ``train``), so every grid of a run shows the same captions."""
        datamodule = self.trainer.datamodule if self._trainer is not None else None
        if datamodule is None or not hasattr(datamodule, "split"):
            raise ValueError("StackGAN's sample grid takes its captions from a TextImageDataModule")
        data = datamodule.split("val" if "val" in datamodule.sets else "train")
        first = torch.nonzero(data.pairs[:, 1] == 0).flatten()[:len(self.fixed_latents)]
        tokens = data.tokens[first]
        return self.sample(len(tokens), labels=tokens, z=self.fixed_latents[:len(tokens)]), None

    # ----------------------------------------------------------------------------------------------
    # Losses

    def discriminator_loss(self, batch: dict[str, Tensor], reg_weight: float) -> dict[str, Tensor]:
        del reg_weight  # no penalties in this family
        real, tokens = self.real_samples(batch), self.tokens(batch)
        phi = self.generator.embed(tokens)
        with torch.no_grad():
            fake = self.generator.from_embedding(self.latents(len(real)), phi)[0]
        real_logits = self.discriminator(real, phi)
        fake_logits = self.discriminator(fake, phi)
        wrong_logits = self.discriminator(real, phi[mismatched_rows(len(real), phi.device)])
        return {"loss": self.adversarial.d(real_logits, torch.cat([fake_logits, wrong_logits])),
                "D/real": real_logits.detach().mean(), "D/fake": fake_logits.detach().mean(),
                "D/wrong": wrong_logits.detach().mean()}

    def generator_loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        real, tokens = self.real_samples(batch), self.tokens(batch)
        phi = self.generator.embed(tokens)
        fake, kl = self.generator.from_embedding(self.latents(len(real)), phi)
        fake_logits = self.discriminator(fake, phi)
        real_logits = None
        if self.adversarial.needs_real_for_g:
            with torch.no_grad():  # the generator's gradient flows through the fake logits only
                real_logits = self.discriminator(real, phi)
        out = {"loss": self.adversarial.g(fake_logits, real_logits) + self.kl_weight * kl, "loss/G/kl": kl.detach()}
        if self.matching_image_encoder is not None:
            matching = matching_loss(self.matching_image_encoder(fake), phi)
            out["loss"] = out["loss"] + self.matching_weight * matching
            out["loss/G/matching"] = matching.detach()
        return out

    # ----------------------------------------------------------------------------------------------
    # Evaluation, prediction, checks

    def _evaluation_step(self, batch: dict[str, Tensor], batch_idx: int, prefix: str) -> None:
        real, tokens = self.real_samples(batch), self.tokens(batch)
        seeded = torch.Generator().manual_seed(self.sample_seed * 100_003 + batch_idx)  # same fakes every time
        fake = self.sample(len(real), labels=tokens, generator=seeded)
        self.log_dict({f"{prefix}/D/real": self.discriminate(real, tokens).mean(),
                       f"{prefix}/D/fake": self.discriminate(fake, tokens).mean()}, batch_size=len(real), sync_dist=True)

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        """One sample per ``batch["index"]`` and its caption, the latent seeded by ``sample_seed`` and the index."""
        indices, tokens = batch["index"], self.tokens(batch)
        z = torch.stack([torch.randn(self.latent_dim, generator=torch.Generator().manual_seed(
            self.sample_seed * 1_000_003 + int(i))) for i in indices])
        return {"index": indices, "image": self.sample(len(indices), labels=tokens, z=z)}

    def on_fit_start(self) -> None:
        super().on_fit_start()
        datamodule = self.trainer.datamodule
        vocabulary = getattr(datamodule, "vocabulary", None)
        if vocabulary is not None and vocabulary != self.generator.vocabulary:
            raise ValueError(
                f"the data's vocabulary ({len(vocabulary)} words) is not the text encoder's "
                f"({len(self.generator.vocabulary)} words): train an encoder on this data "
                "(python benchmarks/train_text_encoder.py --root DATA --out FILE) and name it in the Stage-I "
                "generator's text_encoder")
