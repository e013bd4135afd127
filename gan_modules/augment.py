"""Differentiable augmentation of the discriminator's inputs: DiffAugment and ADA's pipeline.

Both pipelines augment real and generated images alike, every time the discriminator sees them (in
the discriminator's and in the generator's step), and are differentiable with respect to the images,
so the generator learns through them and the augmentations do not leak into its samples. Pure torch
(no Lightning): ``diffaugment(x, "color,translation,cutout")`` and ``ada_augment(x, p)`` can be lifted
into another project as they are.

* DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training";
  settings read from mit-han-lab/data-efficient-gans ``DiffAugment_pytorch.py``): per sample,
  ``color`` adds a brightness offset ``U(-0.5, 0.5)``, scales saturation (around the pixel's channel
  mean) by ``U(0, 2)`` and contrast (around the image mean) by ``U(0.5, 1.5)``; ``translation`` shifts
  by a whole number of pixels up to 1/8 of the side, filling with zeros; ``cutout`` zeroes a square of
  half the side at a random centre.
* ADA (Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data"; settings read
  from NVlabs/stylegan2-ada-pytorch ``training/augment.py``, pipeline ``bgc``): each transform is
  applied to each sample with probability ``p``: x-flip, 90° rotations, integer translation
  (``U(-0.125, 0.125)`` of the side, rounded to pixels), isotropic scaling (``2^N(0, 0.2)``), arbitrary
  rotation (``U(-π, π)``, before and after the anisotropic scaling, each with probability
  ``1 - sqrt(1 - p)``), anisotropic scaling (``2^N(0, 0.2)``), fractional translation (``N(0, 0.125)``
  of the side); then brightness (``+N(0, 0.2)``), contrast (``×2^N(0, 0.5)``), luma flip, hue rotation
  (``U(-π, π)`` about the luma axis) and saturation (``×2^N(0, 1)``). The geometric transforms are one
  affine resampling with reflection padding; the official pipeline upsamples with a wavelet filter
  before resampling to suppress aliasing, which is left out here (bilinear resampling).

Two deliberate differences from the references: outputs are clamped to ``[-1, 1]`` (the images'
contract; the references let colour transforms leave the range), and every random number is drawn
from an explicit ``torch.Generator`` for a *block* of a larger batch (``block=(rank, world)``): the
draws for the whole ``world * N`` batch are made and this block's rows kept, so ``world`` processes
with ``N`` images each augment exactly as one process with ``world * N`` images does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["AUGMENTS", "DIFFAUGMENT_OPS", "ada_augment", "diffaugment", "parse_policy"]

AUGMENTS = ("none", "diffaugment", "ada")
"""Names accepted by ``GANModule(augment=...)``."""

DIFFAUGMENT_OPS = ("color", "translation", "cutout")
"""The DiffAugment operations, in the order they are applied."""


class _Draws:
    """Per-sample random numbers for the rows ``rank*n .. (rank+1)*n`` of a batch of ``world*n``."""

    def __init__(self, n: int, generator: torch.Generator | None, block: tuple[int, int], device: torch.device) -> None:
        rank, world = block
        if not 0 <= rank < world:
            raise ValueError(f"block must be (rank, world) with 0 <= rank < world, got {block}")
        self.n, self.generator, self.rank, self.world, self.device = n, generator, rank, world, device

    def _rows(self, full: Tensor) -> Tensor:
        return full[self.rank * self.n:(self.rank + 1) * self.n].to(self.device)

    def uniform(self, *shape: int) -> Tensor:
        """``U[0, 1)`` of shape ``[n, *shape]``."""
        return self._rows(torch.rand((self.n * self.world, *shape), generator=self.generator))

    def normal(self, *shape: int) -> Tensor:
        """``N(0, 1)`` of shape ``[n, *shape]``."""
        return self._rows(torch.randn((self.n * self.world, *shape), generator=self.generator))

    def integers(self, low: int, high: int, *shape: int) -> Tensor:
        """Integers in ``[low, high)`` of shape ``[n, *shape]`` (float, for arithmetic)."""
        return torch.floor(self.uniform(*shape) * (high - low)) + low

    def coin(self, p: Tensor | float) -> Tensor:
        """``[n]`` booleans, True with probability ``p`` each."""
        return self.uniform() < p


def _check_images(x: Tensor, name: str) -> None:
    if x.dim() != 4:
        raise ValueError(f"{name} augments images [N, C, H, W]; got a tensor of shape {tuple(x.shape)}")


# --------------------------------------------------------------------------------------------- DiffAugment


def parse_policy(policy: str) -> tuple[str, ...]:
    """``"color,translation,cutout"`` -> ``("color", "translation", "cutout")``.

    Raises:
        ValueError: an unknown operation (the message names ``augment_policy``).
    """
    ops = tuple(op.strip() for op in policy.split(",") if op.strip())
    unknown = [op for op in ops if op not in DIFFAUGMENT_OPS]
    if unknown:
        raise ValueError(f"augment_policy: unknown DiffAugment operation(s) {unknown} in '{policy}'; "
                         f"valid: {', '.join(DIFFAUGMENT_OPS)}")
    return ops


def _color(x: Tensor, draws: _Draws) -> Tensor:
    x = x + (draws.uniform(1, 1, 1) - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (draws.uniform(1, 1, 1) * 2.0) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (draws.uniform(1, 1, 1) + 0.5) + mean  # contrast


def _shift_indices(size: int, shift: Tensor) -> tuple[Tensor, Tensor]:
    """Source index ``[n, size]`` of each output position after shifting by ``shift [n]`` pixels, and
    whether it lies inside the image."""
    source = torch.arange(size, device=shift.device).view(1, -1) - shift.view(-1, 1).long()
    inside = (source >= 0) & (source < size)
    return source.clamp(0, size - 1), inside


def _translation(x: Tensor, draws: _Draws, ratio: float = 0.125) -> Tensor:
    n, c, h, w = x.shape
    max_y, max_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    shift_y, shift_x = draws.integers(-max_y, max_y + 1), draws.integers(-max_x, max_x + 1)
    rows, rows_in = _shift_indices(h, shift_y)
    cols, cols_in = _shift_indices(w, shift_x)
    out = torch.gather(x, 2, rows.view(n, 1, h, 1).expand(n, c, h, w))
    out = torch.gather(out, 3, cols.view(n, 1, 1, w).expand(n, c, h, w))
    keep = (rows_in.view(n, 1, h, 1) & cols_in.view(n, 1, 1, w)).to(x.dtype)
    return out * keep  # zero padding


def _cutout(x: Tensor, draws: _Draws, ratio: float = 0.5) -> Tensor:
    n, _, h, w = x.shape
    size_y, size_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    # the square's centre; an odd size can start one pixel further so both borders are reachable
    centre_y = draws.integers(0, h + (1 - size_y % 2))
    centre_x = draws.integers(0, w + (1 - size_x % 2))
    ys = torch.arange(h, device=x.device).view(1, h)
    xs = torch.arange(w, device=x.device).view(1, w)
    top, left = (centre_y - size_y // 2).view(n, 1), (centre_x - size_x // 2).view(n, 1)
    in_y = (ys >= top) & (ys < top + size_y)
    in_x = (xs >= left) & (xs < left + size_x)
    hole = in_y.view(n, 1, h, 1) & in_x.view(n, 1, 1, w)
    return x * (~hole).to(x.dtype)


def diffaugment(x: Tensor, policy: str | tuple[str, ...] = "color,translation,cutout",
                generator: torch.Generator | None = None, block: tuple[int, int] = (0, 1)) -> Tensor:
    """DiffAugment of a batch (Zhao et al. 2020), differentiable with respect to ``x``.

    Args:
        x: images ``[N, C, H, W]`` in ``[-1, 1]``.
        policy: comma-separated operations of :data:`DIFFAUGMENT_OPS` (or a parsed tuple).
        generator: CPU torch RNG for the per-sample draws (the global RNG when None).
        block: ``(rank, world)``: ``x`` is block ``rank`` of a batch of ``world * N`` (see the module).

    Returns:
        ``[N, C, H, W]`` in ``[-1, 1]``.
    """
    _check_images(x, "diffaugment")
    ops = parse_policy(policy) if isinstance(policy, str) else policy
    draws = _Draws(len(x), generator, block, x.device)
    for op in DIFFAUGMENT_OPS:  # fixed order, whatever the order in the policy string
        if op in ops:
            x = {"color": _color, "translation": _translation, "cutout": _cutout}[op](x, draws)
    return x.clamp(-1.0, 1.0)


# --------------------------------------------------------------------------------------------- ADA


def _where_eye(apply: Tensor, matrix: Tensor) -> Tensor:
    """Per sample: ``matrix`` where ``apply``, else the identity (``matrix`` is ``[n, k, k]``)."""
    eye = torch.eye(matrix.shape[-1], device=matrix.device, dtype=matrix.dtype).expand_as(matrix)
    return torch.where(apply.view(-1, 1, 1), matrix, eye)


def _affine(n: int, device: torch.device, a: Tensor, b: Tensor, c: Tensor, d: Tensor, tx: Tensor, ty: Tensor) -> Tensor:
    m = torch.zeros(n, 3, 3, device=device)
    m[:, 0, 0], m[:, 0, 1], m[:, 0, 2] = a, b, tx
    m[:, 1, 0], m[:, 1, 1], m[:, 1, 2] = c, d, ty
    m[:, 2, 2] = 1.0
    return m


def _scale(n: int, device: torch.device, sx: Tensor, sy: Tensor) -> Tensor:
    zero = torch.zeros(n, device=device)
    return _affine(n, device, sx, zero, zero, sy, zero, zero)


def _rotation(n: int, device: torch.device, theta: Tensor) -> Tensor:
    zero = torch.zeros(n, device=device)
    return _affine(n, device, theta.cos(), -theta.sin(), theta.sin(), theta.cos(), zero, zero)


def _translate(n: int, device: torch.device, tx: Tensor, ty: Tensor) -> Tensor:
    one = torch.ones(n, device=device)
    zero = torch.zeros(n, device=device)
    return _affine(n, device, one, zero, zero, one, tx, ty)


def _geometric(draws: _Draws, p: Tensor, h: int, w: int) -> tuple[Tensor, Tensor]:
    """The inverse geometric transform (output pixel -> input pixel, in pixels about the image centre)
    ``[n, 3, 3]`` and which samples it changes ``[n]``."""
    n, dev = draws.n, draws.device
    inverse = torch.eye(3, device=dev).expand(n, 3, 3)
    changed = torch.zeros(n, dtype=torch.bool, device=dev)

    def then(apply: Tensor, matrix: Tensor) -> None:
        nonlocal inverse, changed
        inverse = inverse @ _where_eye(apply, matrix)
        changed = changed | apply

    flip = draws.integers(0, 2)
    then(draws.coin(p), _scale(n, dev, 1 - 2 * flip, torch.ones(n, device=dev)))  # x-flip
    quarter = draws.integers(0, 4)
    then(draws.coin(p), _rotation(n, dev, -math.pi / 2 * quarter))  # 90-degree rotations
    shift = (draws.uniform(2) * 2 - 1) * 0.125
    then(draws.coin(p), _translate(n, dev, -torch.round(shift[:, 0] * w), -torch.round(shift[:, 1] * h)))
    iso = torch.exp2(draws.normal() * 0.2)
    then(draws.coin(p), _scale(n, dev, 1 / iso, 1 / iso))  # isotropic scaling
    p_rot = 1 - torch.sqrt((1 - p).clamp(min=0))  # two chances of rotating: p in all (official)
    theta = (draws.uniform() * 2 - 1) * math.pi
    then(draws.coin(p_rot), _rotation(n, dev, -theta))  # rotation before the anisotropic scaling
    aniso = torch.exp2(draws.normal() * 0.2)
    then(draws.coin(p), _scale(n, dev, 1 / aniso, aniso))  # anisotropic scaling
    theta = (draws.uniform() * 2 - 1) * math.pi
    then(draws.coin(p_rot), _rotation(n, dev, -theta))  # rotation after it
    frac = draws.normal(2) * 0.125
    then(draws.coin(p), _translate(n, dev, -frac[:, 0] * w, -frac[:, 1] * h))  # fractional translation
    return inverse, changed


def _resample(x: Tensor, inverse: Tensor) -> Tensor:
    """Resamples ``x`` with the pixel-space inverse transform ``[n, 3, 3]`` (bilinear, reflection padding)."""
    _, _, h, w = x.shape
    # affine_grid works in coordinates where the image spans [-1, 1]: conjugate by the pixel scale
    to_pixels = torch.diag(torch.tensor([w / 2.0, h / 2.0, 1.0], device=x.device))
    to_unit = torch.diag(torch.tensor([2.0 / w, 2.0 / h, 1.0], device=x.device))
    theta = (to_unit @ inverse @ to_pixels)[:, :2, :].to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _luma_rotation(theta: Tensor, axis: Tensor) -> Tensor:
    """Rotations by ``theta [n]`` about the unit ``axis [3]`` as homogeneous ``[n, 4, 4]`` (Rodrigues)."""
    n = len(theta)
    k = torch.zeros(3, 3, device=theta.device)
    k[0, 1], k[0, 2], k[1, 0], k[1, 2], k[2, 0], k[2, 1] = -axis[2], axis[1], axis[2], -axis[0], -axis[1], axis[0]
    s, c = theta.sin().view(n, 1, 1), theta.cos().view(n, 1, 1)
    r = torch.eye(3, device=theta.device) + s * k + (1 - c) * (k @ k)
    out = torch.eye(4, device=theta.device).repeat(n, 1, 1)
    out[:, :3, :3] = r
    return out


def _color_matrix(draws: _Draws, p: Tensor) -> tuple[Tensor, Tensor]:
    """The colour transform ``[n, 4, 4]`` (homogeneous RGB) and which samples it changes ``[n]``."""
    n, dev = draws.n, draws.device
    matrix = torch.eye(4, device=dev).expand(n, 4, 4)
    changed = torch.zeros(n, dtype=torch.bool, device=dev)

    def then(apply: Tensor, m: Tensor) -> None:
        nonlocal matrix, changed
        matrix = _where_eye(apply, m) @ matrix
        changed = changed | apply

    eye4 = torch.eye(4, device=dev).repeat(n, 1, 1)
    brightness = draws.normal() * 0.2
    m = eye4.clone()
    m[:, :3, 3] = brightness.view(n, 1)
    then(draws.coin(p), m)
    contrast = torch.exp2(draws.normal() * 0.5)
    m = eye4.clone()
    m[:, :3, :3] = m[:, :3, :3] * contrast.view(n, 1, 1)
    then(draws.coin(p), m)
    luma = torch.tensor([1.0, 1.0, 1.0, 0.0], device=dev) / math.sqrt(3)
    outer = torch.outer(luma, luma)
    flip = draws.integers(0, 2)
    then(draws.coin(p), eye4 - 2 * outer * flip.view(n, 1, 1))  # luma flip (Householder reflection)
    theta = (draws.uniform() * 2 - 1) * math.pi
    then(draws.coin(p), _luma_rotation(theta, luma[:3]))  # hue rotation
    saturation = torch.exp2(draws.normal() * 1.0)
    then(draws.coin(p), outer + (eye4 - outer) * saturation.view(n, 1, 1))
    return matrix, changed


def _apply_color(x: Tensor, matrix: Tensor) -> Tensor:
    n, c, h, w = x.shape
    matrix = matrix.to(x.dtype)
    if c == 3:
        flat = x.reshape(n, 3, h * w)
        return (matrix[:, :3, :3] @ flat + matrix[:, :3, 3:]).reshape(n, c, h, w)
    if c == 1:  # grayscale: the mean of the RGB rows, as the official pipeline does
        rows = matrix[:, :3, :].mean(dim=1)  # [n, 4]
        return x * rows[:, :3].sum(dim=1).view(n, 1, 1, 1) + rows[:, 3].view(n, 1, 1, 1)
    raise ValueError(f"ada_augment's colour transforms need 1 or 3 channels, got {c}")


def ada_augment(x: Tensor, p: Tensor | float, generator: torch.Generator | None = None,
                block: tuple[int, int] = (0, 1)) -> Tensor:
    """ADA's non-leaking pipeline (Karras et al. 2020): each transform per sample with probability ``p``.

    Differentiable with respect to ``x`` (twice: R1 through it works). With ``p = 0`` the images come
    back unchanged; the same random numbers are drawn whatever ``p`` is, so a fixed ``generator`` seed
    gives draws that do not depend on ``p``.

    Args:
        x: images ``[N, C, H, W]`` in ``[-1, 1]``, ``C`` 1 or 3.
        p: augmentation probability in ``[0, 1]`` (a float or a 0-dim tensor).
        generator: CPU torch RNG for the per-sample draws (the global RNG when None).
        block: ``(rank, world)``: ``x`` is block ``rank`` of a batch of ``world * N`` (see the module).

    Returns:
        ``[N, C, H, W]`` in ``[-1, 1]``.
    """
    _check_images(x, "ada_augment")
    if not isinstance(p, Tensor) and not 0.0 <= p <= 1.0:  # a tensor p is not checked: no device sync
        raise ValueError(f"ada_augment: p must be in [0, 1], got {p}")
    p = torch.as_tensor(p, dtype=torch.float32, device=x.device)
    draws = _Draws(len(x), generator, block, x.device)
    n, _, h, w = x.shape
    inverse, moved = _geometric(draws, p, h, w)
    x = torch.where(moved.view(n, 1, 1, 1), _resample(x, inverse), x)
    matrix, recoloured = _color_matrix(draws, p)
    x = torch.where(recoloured.view(n, 1, 1, 1), _apply_color(x, matrix), x)
    return x.clamp(-1.0, 1.0)
