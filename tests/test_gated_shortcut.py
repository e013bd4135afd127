"""The gated shortcut (arXiv:2201.11351) and the generator blocks that use it."""

from __future__ import annotations

import pytest
import torch

from gan_modules.nets import DCGANGenerator, ResnetGenerator
from gan_modules.nets.dcgan import UpsampleBlock
from gan_modules.nets.layers import GatedShortcut


def test_gate_is_one_half_at_init_so_the_output_is_the_mean_of_the_two_paths():
    gate = GatedShortcut(3)
    s, f = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(gate.gate(s, f), torch.full((2, 3, 4, 4), 0.5))
    torch.testing.assert_close(gate(s, f), (s + f) / 2)


def test_gate_formula_against_a_hand_computed_gate():
    gate = GatedShortcut(1)
    with torch.no_grad():  # g = sigmoid(2 s - f + 0.5)
        gate.weight.copy_(torch.tensor([2.0, -1.0]).view(1, 2, 1, 1))
        gate.bias.fill_(0.5)
    s, f = torch.tensor([[[[1.0]]]]), torch.tensor([[[[3.0]]]])
    g = 1 / (1 + torch.exp(torch.tensor(-(2 * 1.0 - 3.0 + 0.5))))
    torch.testing.assert_close(gate(s, f), g * s + (1 - g) * f)


def test_gate_parameters_get_gradients_and_shapes_must_match():
    gate = GatedShortcut(4)
    s, f = torch.randn(3, 4, 5, 5, requires_grad=True), torch.randn(3, 4, 5, 5)
    (gate(s, f) * torch.randn(3, 4, 5, 5)).sum().backward()
    assert gate.weight.grad.abs().sum() > 0 and gate.bias.grad.abs().sum() > 0
    assert s.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="same shape"):
        gate(s, torch.randn(3, 4, 4, 4))


@pytest.mark.parametrize("upsample", ["transposed", "nearest_conv"])
@pytest.mark.parametrize("block", ["residual", "gated"])
def test_dcgan_generator_blocks_shapes_backward_and_gate_grads(upsample, block):
    net = DCGANGenerator((1, 32, 32), latent_dim=8, base_channels=4, upsample=upsample, block=block)
    stages = [m for m in net.modules() if isinstance(m, UpsampleBlock)]
    assert len(stages) == 2  # 4 -> 8 -> 16 with a shortcut; the last stage to the image stays plain
    out = net(torch.randn(5, 8))
    assert out.shape == (5, 1, 32, 32) and out.abs().max() <= 1
    out.square().mean().backward()
    gates = [m for m in net.modules() if isinstance(m, GatedShortcut)]
    assert len(gates) == (2 if block == "gated" else 0)
    for gate in gates:  # dcgan_init leaves the gate at zero, and it learns
        assert gate.weight.grad.abs().sum() > 0
    assert all(float(g.weight.detach().abs().sum()) == 0 for g in gates)


def test_plain_dcgan_generator_keeps_its_parameter_names():
    plain = DCGANGenerator((1, 32, 32), latent_dim=8, base_channels=4)
    assert "body.3.weight" in plain.state_dict() and not any("gate" in k for k in plain.state_dict())
    gated = DCGANGenerator((1, 32, 32), latent_dim=8, base_channels=4, block="gated")
    extra = sum(p.numel() for p in gated.parameters()) - sum(p.numel() for p in plain.parameters())
    # per hidden stage: a 1x1 shortcut c_in -> c_out, a 1x1 gate 2 c_out -> c_out with bias
    assert extra == (16 * 8 + 8 * 16 + 8) + (8 * 4 + 4 * 8 + 4)


def test_resnet_generator_gated_blocks():
    net = ResnetGenerator((3, 16, 16), base_channels=4, n_blocks=2, block="gated")
    gates = [m for m in net.modules() if isinstance(m, GatedShortcut)]
    assert len(gates) == 2
    out = net(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, 3, 16, 16)
    out.sum().backward()
    assert all(g.weight.grad.abs().sum() > 0 for g in gates)


@pytest.mark.parametrize("make", [lambda: DCGANGenerator(block="skip"), lambda: ResnetGenerator(block="plain")])
def test_unknown_block_is_a_clear_error(make):
    with pytest.raises(ValueError, match="block"):
        make()
