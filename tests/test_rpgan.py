"""The R3GAN objective (RpGAN + R1 + R2, Huang et al. 2024) as GAN composes it, against a hand computation.

``tests/test_losses.py`` checks ``rpgan_d``/``rpgan_g`` and the R1/R2 penalties one at a time; this checks the
sum the family builds: ``E softplus(f - r) + γ1/2 E||∇D(real)||² + γ2/2 E||∇D(fake)||²``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gan_modules import GAN


class LinearD(nn.Module):
    """``D(x) = w·x + b``: its input gradient is ``w`` everywhere, so R1 = R2 = ||w||²."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor([[0.3, -0.4]]))
            self.linear.bias.fill_(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(-1)


class ShiftG(nn.Module):
    """``G(z) = z + c``, a generator whose samples are known."""

    latent_dim, num_classes, sample_shape = 2, 0, (2,)

    def __init__(self) -> None:
        super().__init__()
        self.shift = nn.Parameter(torch.tensor([1.0, -1.0]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.shift


def model(r1: float, r2: float) -> GAN:
    return GAN(ShiftG(), LinearD(), loss="rpgan", r1_gamma=r1, r2_gamma=r2)


def test_rpgan_r1_r2_discriminator_loss_by_hand():
    real = torch.tensor([[0.0, 1.0], [2.0, 0.5], [-1.0, -1.0]])
    gan = model(r1=2.0, r2=0.5)
    torch.manual_seed(0)
    out = gan.discriminator_loss({"image": real}, reg_weight=1.0)
    torch.manual_seed(0)
    fake = torch.randn(3, 2) + torch.tensor([1.0, -1.0])
    w, b = torch.tensor([0.3, -0.4]), 0.1
    r, f = real @ w + b, fake @ w + b
    w_sq = 0.3**2 + 0.4**2
    expected = F.softplus(f - r).mean() + 0.5 * 2.0 * w_sq + 0.5 * 0.5 * w_sq
    torch.testing.assert_close(out["loss"], expected)
    torch.testing.assert_close(out["loss/D/r1"], torch.tensor(w_sq))
    torch.testing.assert_close(out["loss/D/r2"], torch.tensor(w_sq))
    # lazy regularization: weight 0 drops both penalties, weight 4 scales them by 4
    torch.manual_seed(0)
    assert "loss/D/r1" not in gan.discriminator_loss({"image": real}, reg_weight=0.0)
    torch.manual_seed(0)
    lazy = gan.discriminator_loss({"image": real}, reg_weight=4.0)["loss"]
    torch.testing.assert_close(lazy, F.softplus(f - r).mean() + 4 * 1.25 * w_sq)


def test_rpgan_penalties_train_the_discriminator_not_the_generator():
    gan = model(r1=1.0, r2=1.0)
    gan.discriminator_loss({"image": torch.randn(4, 2)}, reg_weight=1.0)["loss"].backward()
    assert gan.generator.shift.grad is None  # fakes are made under no_grad in the D step
    assert gan.discriminator.linear.weight.grad is not None


def test_rpgan_generator_loss_pairs_fakes_with_reals():
    gan = model(r1=1.0, r2=1.0)
    real = torch.tensor([[0.0, 1.0], [2.0, 0.5]])
    torch.manual_seed(1)
    loss = gan.generator_loss({"image": real})["loss"]
    torch.manual_seed(1)
    fake = torch.randn(2, 2) + torch.tensor([1.0, -1.0])
    w = torch.tensor([0.3, -0.4])
    torch.testing.assert_close(loss, F.softplus((real @ w) - (fake @ w)).mean())
    loss.backward()
    # d/dc softplus(r - f) with f = w·(z + c) + b: -sigmoid(r - f) · w, averaged
    expected = -(torch.sigmoid((real @ w) - (fake @ w)).mean()) * w
    torch.testing.assert_close(gan.generator.shift.grad, expected)
