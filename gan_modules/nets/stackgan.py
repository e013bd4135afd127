"""StackGAN's networks (Zhang et al. 2017, "StackGAN: Text to Photo-realistic Image Synthesis with
Stacked Generative Adversarial Networks"), at the sizes of a CPU experiment.

* :class:`ConditioningAugmentation`: the sentence embedding ``phi_t`` to ``mu, log sigma^2`` (one
  linear layer) and ``c = mu + sigma * eps``; :func:`conditioning_kl` is its KL term to N(0, I).
* :class:`StackGANStage1Generator`: ``(noise, c)`` -> a ``resolution`` px sketch (a linear layer to
  4x4, nearest-upsampling 3x3 convolutions, batch norm, ReLU, tanh), as the paper's Stage-I.
* :class:`StackGANStage2Generator`: a frozen Stage-I generator read from its checkpoint, then the
  Stage-I image encoded down to a quarter of the output size, ``c`` (its own conditioning
  augmentation) replicated spatially and joined, residual blocks, and upsampling to the output size.
* :class:`StackGANDiscriminator`: stride-2 4x4 convolutions down to 4x4, the embedding compressed
  by a linear layer and replicated over the 4x4 map, a 3x3 and a 4x4 convolution to one logit.

Both generators hold the frozen text encoder (``gan_modules.nets.text``) and its vocabulary, so
``G(z, tokens)`` and :meth:`~StackGANStage1Generator.sample_captions` work from a checkpoint alone.
The latent ``z`` carries the noise and the conditioning-augmentation draws: Stage-I's is
``[noise (noise_dim), eps (cond_dim)]``, Stage-II's Stage-I's latent then its own ``eps``, so a sample
is a pure function of ``(z, tokens)`` (reproducible, the same under DDP). Departures from the paper:
no ReLU on ``mu`` and ``log sigma^2``; 64-d text and conditioning codes instead of 1024 / 128;
Stage-I at 32 px and Stage-II at 64 px instead of 64 and 256.
Settings checked against the authors' code (hanzhanggit/StackGAN-Pytorch, ``model.py``, ``trainer.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Network, build_network, check_sample_shape, get_norm2d, register_network
from .text import TextEncoder, Vocabulary, read_encoder_file


def conditioning_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(mu, diag(exp(logvar))) || N(0, I))`` averaged over batch and dimensions (StackGAN's ``KL_loss``).

    Per element: ``-0.5 * (1 + logvar - mu^2 - exp(logvar))``.
    """
    return -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp())


class ConditioningAugmentation(nn.Module):
    """``phi [N, embed_dim]`` and ``eps [N, cond_dim]`` -> ``(c, mu, logvar)``, each ``[N, cond_dim]``.

    With ``noise=False`` (the paper's "without CA" ablation) ``c = mu``: ``eps`` is ignored and
    :meth:`kl` is 0, so the code is a deterministic linear function of the caption's embedding.
    """

    def __init__(self, embed_dim: int, cond_dim: int, noise: bool = True) -> None:
        super().__init__()
        self.cond_dim, self.noise = cond_dim, noise
        self.fc = nn.Linear(embed_dim, 2 * cond_dim)

    def forward(self, phi: Tensor, eps: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        mu, logvar = self.fc(phi).chunk(2, dim=1)
        return (mu + torch.exp(0.5 * logvar) * eps if self.noise else mu), mu, logvar

    def kl(self, mu: Tensor, logvar: Tensor) -> Tensor:
        """The KL term of G's loss: :func:`conditioning_kl`, or 0 without the noise."""
        return conditioning_kl(mu, logvar) if self.noise else mu.new_zeros(())


def _up_block(c_in: int, c_out: int, norm: str) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False),
                         get_norm2d(norm, c_out), nn.ReLU(inplace=True))


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1, bias=False), get_norm2d(norm, channels),
                                  nn.ReLU(inplace=True), nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
                                  get_norm2d(norm, channels))

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x + self.body(x))


def _power_of_two_steps(name: str, low: int, high: int) -> int:
    steps = int(round(math.log2(high / low))) if high >= low else -1
    if steps < 1 or low * 2**steps != high:
        raise ValueError(f"{name}: {high} px is not {low} px times a power of two")
    return steps


# Small configurations for the network tests (tests/test_nets.py): Stage-I at 16 px, 3 channels.
_SMALL_STAGE1 = {"noise_dim": 8, "cond_dim": 8, "base_channels": 4}  # at its default 32 px
_TEST_SHAPES = [(3, 32, 32), (1, 32, 32)]


class TextConditionedGenerator(Network):
    """What both StackGAN generators share: the frozen text encoder, the vocabulary, sampling from text.

    Subclasses set ``text_encoder`` (a frozen :class:`~gan_modules.nets.text.TextEncoder`), ``vocabulary``,
    ``max_length``, ``latent_dim``, ``sample_shape`` and implement :meth:`from_embedding`.
    """

    text_encoder: TextEncoder
    vocabulary: Vocabulary
    max_length: int

    def embed(self, tokens: Tensor) -> Tensor:
        """Sentence embeddings ``[N, embed_dim]`` of tokens ``[N, L]`` from the frozen encoder (no gradient)."""
        with torch.no_grad():
            return self.text_encoder(tokens)

    def forward_with_kl(self, z: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Images ``[N, *sample_shape]`` in ``[-1, 1]`` and the conditioning augmentation's KL term (scalar)."""
        return self.from_embedding(z, self.embed(tokens))

    def from_embedding(self, z: Tensor, phi: Tensor) -> tuple[Tensor, Tensor]:
        """As :meth:`forward_with_kl`, from the sentence embeddings ``phi [N, embed_dim]`` of the captions."""
        raise NotImplementedError

    def forward(self, z: Tensor, tokens: Tensor) -> Tensor:
        """``z [N, latent_dim]``, caption tokens ``[N, L]`` int64 -> images ``[N, *sample_shape]`` in ``[-1, 1]``."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"{type(self).__name__} expects z [N, {self.latent_dim}], got {tuple(z.shape)}")
        if tokens is None or tokens.dim() != 2 or tokens.shape[0] != z.shape[0]:
            raise ValueError(f"{type(self).__name__} is conditioned on captions: call it as G(z, tokens) with "
                             f"tokens [N={z.shape[0]}, L] int64 (G.encode(captions) makes them)")
        return self.forward_with_kl(z, tokens)[0]

    def encode(self, captions: Sequence[str]) -> Tensor:
        """Caption strings -> tokens ``[N, max_length]`` (an empty or all-unknown caption is an error)."""
        return self.vocabulary.encode_batch(list(captions), self.max_length)[0]

    @torch.no_grad()
    def sample_captions(self, captions: Sequence[str], seed: int = 0) -> Tensor:
        """One image ``[N, *sample_shape]`` in ``[-1, 1]`` per caption string, the latents seeded by ``seed``."""
        tokens = self.encode(captions).to(next(self.parameters()).device)
        z = torch.randn(len(captions), self.latent_dim, generator=torch.Generator().manual_seed(seed))
        return self(z.to(tokens.device), tokens)

    def example_inputs(self, n: int) -> tuple[Tensor, Tensor]:
        """Valid ``(z, tokens)`` for tests: random latents, tokens of known words."""
        gen = torch.Generator().manual_seed(0)
        tokens = torch.randint(2, len(self.vocabulary), (n, min(6, self.max_length)), generator=gen)
        return torch.randn(n, self.latent_dim, generator=gen), tokens

    def train(self, mode: bool = True) -> TextConditionedGenerator:
        super().train(mode)
        self.frozen_parts().eval()  # frozen parts keep their statistics (batch norm) and stay deterministic
        return self

    def frozen_parts(self) -> nn.Module:
        return self.text_encoder

    def inactive_parameters(self) -> set[str]:
        """Names of the frozen parameters (text encoder, Stage-I): they never receive a gradient."""
        return {name for name, p in self.named_parameters() if not p.requires_grad}


@register_network(small_configs=[_SMALL_STAGE1, {**_SMALL_STAGE1, "norm": "instance"}])
class StackGANStage1Generator(TextConditionedGenerator):
    """Stage-I: ``G(z, tokens)`` -> ``[N, C, resolution, resolution]`` in ``[-1, 1]``.

    Args:
        sample_shape: the data's ``(C, H, W)`` (linked from the datamodule); only ``C`` is used, the
            output is ``resolution`` px.
        resolution: output side (a power of two >= 8).
        noise_dim: size of the noise part of ``z``; ``latent_dim = noise_dim + cond_dim``.
        cond_dim: size of the conditioning code ``c``.
        base_channels: channels of the last layer; the 4x4 layer has ``base_channels * 2**k``.
        norm: ``batch`` (the paper's), ``instance``, ``layer`` or ``none``.
        text_encoder: the encoders file (``gan_modules.nets.text.save_text_image_encoders``), None for
            the packaged one; in a checkpoint's spec, the encoder's configuration as plain data.
        conditioning_augmentation: ``c ~ N(mu, Sigma)`` with its KL term (the paper's); False for
            ``c = mu`` and no KL term (the eps part of ``z`` is then unused).
    """

    def __init__(self, sample_shape: Sequence[int] = (3, 64, 64), resolution: int = 32, noise_dim: int = 64,
                 cond_dim: int = 64, base_channels: int = 32, norm: str = "batch",
                 text_encoder: str | dict | None = None, conditioning_augmentation: bool = True) -> None:
        super().__init__()
        channels = check_sample_shape(sample_shape, ndim=3, name=type(self).__name__)[0]
        ups = _power_of_two_steps(f"{type(self).__name__} resolution", 4, resolution)
        self.sample_shape = (channels, resolution, resolution)
        self.noise_dim, self.cond_dim = noise_dim, cond_dim
        self.latent_dim = noise_dim + cond_dim
        self.text_encoder, self.vocabulary, self.max_length, self._encoder_spec = _frozen_text_encoder(text_encoder)
        self.ca = ConditioningAugmentation(self.text_encoder.embed_dim, cond_dim, noise=conditioning_augmentation)
        top = base_channels * 2**ups
        self.fc = nn.Sequential(nn.Linear(self.latent_dim, top * 16, bias=False), nn.BatchNorm1d(top * 16)
                                if norm == "batch" else nn.Identity(), nn.ReLU(inplace=True))
        self.top = top
        self.ups = nn.Sequential(*[_up_block(top // 2**i, top // 2 ** (i + 1), norm) for i in range(ups)])
        self.to_image = nn.Sequential(nn.Conv2d(base_channels, channels, 3, 1, 1), nn.Tanh())

    test_shapes = _TEST_SHAPES

    def recorded_arguments(self, arguments: dict[str, Any]) -> dict[str, Any]:
        return {**arguments, "text_encoder": self._encoder_spec}

    def condition(self, z: Tensor, phi: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(noise, c, kl)``: ``z``'s noise part and the conditioning code drawn with ``z``'s eps part."""
        c, mu, logvar = self.ca(phi, z[:, self.noise_dim:])
        return z[:, :self.noise_dim], c, self.ca.kl(mu, logvar)

    def synthesize(self, noise: Tensor, c: Tensor) -> Tensor:
        x = self.fc(torch.cat([noise, c], dim=1)).view(len(noise), self.top, 4, 4)
        return self.to_image(self.ups(x))

    def from_embedding(self, z: Tensor, phi: Tensor) -> tuple[Tensor, Tensor]:
        noise, c, kl = self.condition(z, phi)
        return self.synthesize(noise, c), kl


@register_network(small_configs=[{
    "stage1_checkpoint": {"spec": {"class_path": "gan_modules.nets.stackgan.StackGANStage1Generator",
                                   "init_args": {"sample_shape": [3, 64, 64], **_SMALL_STAGE1, "resolution": 16}}},
    "cond_dim": 8, "base_channels": 4, "num_residual": 1}])
class StackGANStage2Generator(TextConditionedGenerator):
    """Stage-II: a frozen Stage-I generator, then a refiner to ``sample_shape``; ``G(z, tokens)``.

    ``z`` is Stage-I's latent followed by Stage-II's own ``cond_dim`` draws. Stage-I runs in eval mode
    without gradients and its weights never change; only the refiner and its conditioning augmentation
    train.

    Args:
        sample_shape: the output ``(C, H, W)`` (linked from the datamodule); ``H`` is a power of two
            times Stage-I's resolution.
        stage1_checkpoint: a Stage-I run's checkpoint (its EMA generator when it kept one); in a
            checkpoint's spec, Stage-I's spec as plain data (its weights are in the state dict).
        cond_dim: size of Stage-II's conditioning code.
        base_channels: channels at the output resolution; the joint features at a quarter of it
            have ``base_channels * 4``.
        num_residual: residual blocks on the joint features.
        norm: ``batch`` (the paper's), ``instance``, ``layer`` or ``none``.
        conditioning_augmentation: Stage-II's own ``c ~ N(mu, Sigma)`` with its KL term (the paper's);
            False for ``c = mu`` and no KL term. Stage-I keeps its own setting.
    """

    def __init__(self, sample_shape: Sequence[int] = (3, 64, 64), stage1_checkpoint: str | dict = "",
                 cond_dim: int = 64, base_channels: int = 32, num_residual: int = 2, norm: str = "batch",
                 conditioning_augmentation: bool = True) -> None:
        super().__init__()
        shape = check_sample_shape(sample_shape, ndim=3, name=type(self).__name__)
        self.stage1 = load_stage1(stage1_checkpoint).requires_grad_(False).eval()
        low, high = self.stage1.sample_shape[-1], shape[-1]
        ups = _power_of_two_steps(f"{type(self).__name__} sample_shape (Stage-I makes {low} px)", low, high)
        self.sample_shape, self.cond_dim = shape, cond_dim
        self.latent_dim = self.stage1.latent_dim + cond_dim
        self.text_encoder, self.vocabulary, self.max_length = (self.stage1.text_encoder, self.stage1.vocabulary,
                                                               self.stage1.max_length)
        self.ca = ConditioningAugmentation(self.text_encoder.embed_dim, cond_dim, noise=conditioning_augmentation)
        if ups > 2:
            raise ValueError(f"{type(self).__name__}: the output ({high} px) is at most 4 times Stage-I's ({low} px)")
        # encode the Stage-I image down to a quarter of the output size (a 3x3 conv, then stride-2 4x4 convs)
        joint = base_channels * 4
        encoder: list[nn.Module] = [nn.Conv2d(shape[0], base_channels, 3, 1, 1), nn.ReLU(inplace=True)]
        channels = base_channels
        for _ in range(max(0, 2 - ups)):
            encoder += [nn.Conv2d(channels, min(2 * channels, joint), 4, 2, 1, bias=False),
                        get_norm2d(norm, min(2 * channels, joint)), nn.ReLU(inplace=True)]
            channels = min(2 * channels, joint)
        self.encoder = nn.Sequential(*encoder, nn.Conv2d(channels, joint, 3, 1, 1, bias=False), get_norm2d(norm, joint),
                                     nn.ReLU(inplace=True))
        self.joint = nn.Sequential(nn.Conv2d(joint + cond_dim, joint, 3, 1, 1, bias=False), get_norm2d(norm, joint),
                                   nn.ReLU(inplace=True), *[_ResidualBlock(joint, norm) for _ in range(num_residual)])
        self.ups = nn.Sequential(_up_block(joint, 2 * base_channels, norm), _up_block(2 * base_channels, base_channels, norm))
        self.to_image = nn.Sequential(nn.Conv2d(base_channels, shape[0], 3, 1, 1), nn.Tanh())

    test_shapes = [(3, 32, 32), (3, 64, 64)]

    def recorded_arguments(self, arguments: dict[str, Any]) -> dict[str, Any]:
        return {**arguments, "stage1_checkpoint": {"spec": self.stage1.init_spec}}

    def frozen_parts(self) -> nn.Module:
        return self.stage1

    def from_embedding(self, z: Tensor, phi: Tensor) -> tuple[Tensor, Tensor]:
        split = self.stage1.latent_dim
        with torch.no_grad():
            sketch = self.stage1.synthesize(*self.stage1.condition(z[:, :split], phi)[:2])
        c, mu, logvar = self.ca(phi, z[:, split:])
        x = self.encoder(sketch)
        x = self.joint(torch.cat([x, c[:, :, None, None].expand(-1, -1, *x.shape[-2:])], dim=1))
        return self.to_image(self.ups(x)), self.ca.kl(mu, logvar)


@register_network(small_configs=[{"cond_dim": 8, "base_channels": 4}, {"base_channels": 4, "norm": "none"}])
class StackGANDiscriminator(Network):
    """Matching-aware discriminator ``D(x [N, C, r, r], phi [N, embed_dim]) -> logits [N]``.

    Args:
        sample_shape: the data's ``(C, H, W)`` (linked from the datamodule).
        resolution: the side of the images it judges (Stage-I's resolution); None for the data's.
        embed_dim: size of the sentence embedding (the text encoder's ``embed_dim``).
        cond_dim: size the embedding is compressed to before it joins the 4x4 features.
        base_channels: channels of the first layer, doubled at each stride-2 layer up to ``8 *``.
        norm: ``batch`` (the paper's), ``instance``, ``layer`` or ``none``.
    """

    def __init__(self, sample_shape: Sequence[int] = (3, 64, 64), resolution: int | None = None,
                 embed_dim: int = 64, cond_dim: int = 64, base_channels: int = 32, norm: str = "batch") -> None:
        super().__init__()
        shape = check_sample_shape(sample_shape, ndim=3, name=type(self).__name__)
        resolution = shape[-1] if resolution is None else resolution
        downs = _power_of_two_steps(f"{type(self).__name__} resolution", 4, resolution)
        self.sample_shape, self.resolution, self.embed_dim = (shape[0], resolution, resolution), resolution, embed_dim
        layers: list[nn.Module] = []
        c_in = shape[0]
        for i in range(downs):
            c_out = base_channels * min(2**i, 8)
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=i > 0 and norm == "none"),
                       nn.Identity() if i == 0 else get_norm2d(norm, c_out), nn.LeakyReLU(0.2, inplace=True)]
            c_in = c_out
        self.body = nn.Sequential(*layers)
        self.compress = nn.Sequential(nn.Linear(embed_dim, cond_dim), nn.LeakyReLU(0.2, inplace=True))
        self.joint = nn.Sequential(nn.Conv2d(c_in + cond_dim, c_in, 3, 1, 1, bias=False), get_norm2d(norm, c_in),
                                   nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(c_in, 1, 4, 1, 0))

    test_shapes = _TEST_SHAPES

    def example_inputs(self, n: int) -> tuple[Tensor, Tensor]:
        """Valid ``(x, phi)`` for tests: images in ``[-1, 1]`` and random sentence embeddings."""
        gen = torch.Generator().manual_seed(0)
        return (torch.rand(n, *self.sample_shape, generator=gen) * 2 - 1, torch.randn(n, self.embed_dim, generator=gen))

    def forward(self, x: Tensor, phi: Tensor) -> Tensor:
        if tuple(x.shape[1:]) != self.sample_shape:
            raise ValueError(f"{type(self).__name__} judges {self.sample_shape} images, got {tuple(x.shape[1:])}")
        if phi is None or phi.dim() != 2 or phi.shape != (len(x), self.embed_dim):
            raise ValueError(f"{type(self).__name__} is matching-aware: call it as D(x, phi) with phi "
                             f"[N={len(x)}, {self.embed_dim}] sentence embeddings")
        h = self.body(x)
        code = self.compress(phi)[:, :, None, None].expand(-1, -1, *h.shape[-2:])
        return self.joint(torch.cat([h, code], dim=1)).flatten()


def _frozen_text_encoder(source: str | dict | None) -> tuple[TextEncoder, Vocabulary, int, dict]:
    """The frozen text encoder, vocabulary and ``max_length`` from an encoders file (weights loaded) or
    from a spec dict (weights to come from a state dict), and the spec dict that rebuilds them."""
    if isinstance(source, dict):
        spec = source
        encoder = TextEncoder(**spec["config"])
    else:
        contents = read_encoder_file(source, option="generator.init_args.text_encoder")
        spec = {"config": contents["text_config"], "vocabulary": list(contents["vocabulary"]),
                "max_length": int(contents["max_length"])}
        encoder = TextEncoder(**spec["config"])
        encoder.load_state_dict(contents["text_state"])
    return encoder.requires_grad_(False).eval(), Vocabulary(spec["vocabulary"]), int(spec["max_length"]), spec


def load_stage1(source: str | dict) -> StackGANStage1Generator:
    """The Stage-I generator of a checkpoint (EMA weights when the run kept them), or rebuilt from a spec dict.

    Raises:
        FileNotFoundError: the checkpoint does not exist (the message names ``stage1_checkpoint``).
        ValueError: the file is not a checkpoint of a StackGAN Stage-I run.
    """
    option = "generator.init_args.stage1_checkpoint"
    if isinstance(source, dict):
        stage1 = build_network(source["spec"])
    else:
        path = Path(str(source)).expanduser()
        if not str(source) or not path.is_file():
            raise FileNotFoundError(f"Stage-I checkpoint '{source}' ({option}) does not exist; train Stage-I first "
                                    "(python train.py fit --config configs/stackgan_stage1_shapes.yaml)")
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # not a torch file, or one holding objects
            raise ValueError(f"'{path}' ({option}) is not a readable checkpoint: {error}") from error
        state = checkpoint.get("gan") if isinstance(checkpoint, dict) else None
        spec = (state or {}).get("generator_spec") or {}
        if not str(spec.get("class_path", "")).endswith(".StackGANStage1Generator"):
            found = spec.get("class_path", "no GANModule generator")
            raise ValueError(f"'{path}' ({option}) is not a StackGAN Stage-I checkpoint: its generator is {found}")
        prefix = state["generator_key"] + "."
        stage1 = build_network(spec)
        stage1.load_state_dict({k[len(prefix):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)})
    if not isinstance(stage1, StackGANStage1Generator):
        raise ValueError(f"{option}: expected a StackGANStage1Generator, got {type(stage1).__name__}")
    return stage1
