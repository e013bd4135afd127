"""StyleGAN / StyleGAN2: AdaIN, demodulation, truncation, style mixing, noise, path length, LR multiplier, training."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import digits_data

from gan_modules import StyleGAN, load_generator
from gan_modules.nets import StyleGANDiscriminator, StyleGANGenerator
from gan_modules.nets.layers import EqualizedLinear, MinibatchStd, fir_filter, upsample2d
from gan_modules.nets.stylegan_layers import AdaIN, NoiseInput, modulated_conv2d, modulated_upconv2d
from gan_modules.stylegan import path_length_penalty, path_lengths


def tiny_generator(**kwargs) -> StyleGANGenerator:
    args = dict(latent_dim=8, w_dim=8, channel_base=64, channel_max=8, mapping_layers=2)
    args.update(kwargs)
    return StyleGANGenerator((1, 16, 16), **args)


def test_adain_output_statistics_equal_the_style() -> None:
    torch.manual_seed(0)
    adain = AdaIN(w_dim=8, channels=4)
    x = torch.randn(3, 4, 16, 16) * torch.rand(3, 4, 1, 1) * 5 + torch.randn(3, 4, 1, 1) * 3
    w = torch.randn(3, 8)
    y = adain(x, w)
    scale, bias = adain.styles(w)
    assert scale.sub(1).abs().max() > 0.1 and bias.abs().max() > 0.1  # a non-trivial style
    torch.testing.assert_close(y.mean(dim=(2, 3)), bias, atol=1e-4, rtol=0)
    torch.testing.assert_close(y.std(dim=(2, 3), unbiased=False), scale.abs(), atol=1e-3, rtol=1e-3)


def test_demodulation_gives_unit_output_variance() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 64, 40, 40)
    weight = torch.randn(32, 64, 3, 3) * 0.3
    styles = torch.rand(4, 64) * 3 + 0.1
    y = modulated_conv2d(x, weight, styles, demodulate=True, padding=1)[:, :, 1:-1, 1:-1]  # no zero padding
    var = y.var(dim=(2, 3))  # per sample and output channel
    assert var.mean().item() == pytest.approx(1.0, abs=0.03)
    assert (var - 1).abs().max().item() < 0.25
    raw = modulated_conv2d(x, weight, styles, demodulate=False, padding=1)[:, :, 1:-1, 1:-1]
    assert (raw.var(dim=(2, 3)).mean() - 1).abs() > 0.5  # without demodulation the style sets the scale


def test_modulated_upconv_equals_conv_on_the_upsampled_input() -> None:
    torch.manual_seed(0)
    x, weight, styles, f = torch.randn(2, 5, 6, 6), torch.randn(3, 5, 3, 3), torch.rand(2, 5) + 0.5, fir_filter([1, 3, 3, 1])
    for demodulate in (True, False):
        fast = modulated_upconv2d(x, weight, styles, f, demodulate)
        reference = modulated_conv2d(upsample2d(x, f), weight, styles, demodulate, padding=1)
        assert fast.shape == reference.shape == (2, 3, 12, 12)
        torch.testing.assert_close(fast[..., 1:-1, 1:-1], reference[..., 1:-1, 1:-1])  # equal off the border


def test_truncation_towards_tracked_w_avg() -> None:
    torch.manual_seed(0)
    g = tiny_generator()
    assert torch.all(g.w_avg == 0)
    for _ in range(3):  # training-mode forwards update w̄
        g(torch.randn(16, 8))
    assert g.w_avg.abs().sum() > 0
    g.eval()
    before = g.w_avg.clone()
    ws = g.mapping(torch.randn(5, 8), truncation_psi=0.0)
    assert ws.shape == (5, g.num_ws, 8)
    torch.testing.assert_close(ws, before.expand_as(ws))
    assert torch.equal(g.w_avg, before)  # eval forwards leave w̄ alone
    z = torch.randn(5, 8)
    full, half = g.mapping(z), g.mapping(z, truncation_psi=0.5, truncation_cutoff=2)
    torch.testing.assert_close(half[:, :2], (full[:, :2] + before) / 2)
    torch.testing.assert_close(half[:, 2:], full[:, 2:])
    images = g(torch.randn(4, 8), truncation_psi=0.0)
    torch.testing.assert_close(images, images[:1].expand_as(images))  # const noise: one image


@pytest.mark.parametrize("architecture", ["stylegan", "stylegan2"])
def test_style_mixing_takes_layers_before_crossover_from_z1(architecture: str) -> None:
    torch.manual_seed(0)
    g = tiny_generator(architecture=architecture).eval()
    z1, z2 = torch.randn(3, 8), torch.randn(3, 8)
    w1, w2 = g.mapping(z1)[:, 0], g.mapping(z2)[:, 0]
    seen = []
    g.synthesis.register_forward_pre_hook(lambda module, args, kwargs: seen.append(args[0]), with_kwargs=True)
    for crossover in (0, 2, g.num_ws):
        images = g.mix_styles(z1, z2, crossover_layer=crossover)
        ws = seen[-1]
        assert images.shape == (3, 1, 16, 16)
        for i in range(g.num_ws):
            torch.testing.assert_close(ws[:, i], w1 if i < crossover else w2)
    g.mix_styles(z1, z2, layers="coarse")
    coarse = g.style_layers("coarse")
    assert coarse == [i for i, r in enumerate(g.layer_resolutions) if r <= 8] and 0 < len(coarse) < g.num_ws
    for i in range(g.num_ws):
        torch.testing.assert_close(seen[-1][:, i], w2 if i in coarse else w1)
    with pytest.raises(ValueError, match="exactly one"):
        g.mix_styles(z1, z2)


def test_style_levels_and_layer_counts() -> None:
    g1 = StyleGANGenerator((3, 64, 64), 8, 8, architecture="stylegan", block_architecture="orig", channel_base=64, channel_max=8)
    g2 = StyleGANGenerator((3, 64, 64), 8, 8, architecture="stylegan2", channel_base=64, channel_max=8)
    assert g1.num_ws == g2.num_ws == 2 * 6 - 2  # 2 log2(H) - 2
    assert g1.layer_resolutions == [4, 4, 8, 8, 16, 16, 32, 32, 64, 64]
    assert g1.style_layers("coarse") == [0, 1, 2, 3] and g1.style_layers("middle") == [4, 5, 6, 7]
    assert g1.style_layers("fine") == [8, 9]
    with pytest.raises(ValueError, match="coarse, middle, fine"):
        g1.style_layers("medium")


def test_noise_modes() -> None:
    torch.manual_seed(0)
    g = tiny_generator().eval()
    for module in g.modules():
        if isinstance(module, NoiseInput):
            module.strength.data.fill_(0.5)  # learned scales start at 0; make the noise visible
    z = torch.randn(2, 8)
    with torch.no_grad():
        const = g(z, noise_mode="const")
        assert torch.equal(const, g(z, noise_mode="const"))
        assert torch.equal(const, g(z))  # eval-mode default: const, so samples are a function of z
        a, b = g(z, noise_mode="random"), g(z, noise_mode="random")
        assert (a - b).abs().max() > 1e-3
        assert (g(z, noise_mode="none") - const).abs().max() > 1e-3
    with pytest.raises(ValueError, match="random, const, none"):
        g(z, noise_mode="fixed")


def test_interpolation_endpoints() -> None:
    torch.manual_seed(0)
    g = tiny_generator().eval()
    z1, z2 = torch.randn(2, 8), torch.randn(2, 8)
    with torch.no_grad():
        for space in ("w", "z"):
            path = g.interpolate(z1, z2, steps=5, space=space).reshape(2, 5, 1, 16, 16)
            torch.testing.assert_close(path[:, 0], g(z1), atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(path[:, -1], g(z2), atol=1e-5, rtol=1e-4)


def test_path_length_matches_a_direct_jacobian() -> None:
    torch.manual_seed(0)
    g = StyleGANGenerator((1, 8, 8), latent_dim=4, w_dim=4, channel_base=16, channel_max=4, mapping_layers=1)
    ws = g.mapping(torch.randn(2, 4)).detach().requires_grad_(True)
    images = g.synthesis(ws, noise_mode="const")
    noise = torch.randn_like(images) / math.sqrt(64)
    lengths = path_lengths(images, ws, noise)
    expected = []
    for n in range(2):  # G treats samples independently: the Jacobian of sample n's image w.r.t. its own ws
        jac = torch.autograd.functional.jacobian(lambda w: g.synthesis(w[None], noise_mode="const"), ws[n].detach(),
                                                 vectorize=True, strategy="forward-mode")  # [1, 1, 8, 8, nw, 4]
        grad = (jac.reshape(64, -1).t() @ noise[n].flatten()).reshape(g.num_ws, 4)  # J^T y
        expected.append(grad.square().sum(1).mean().sqrt())
    torch.testing.assert_close(lengths, torch.stack(expected), atol=1e-5, rtol=1e-4)
    pl_mean = torch.tensor(0.3)
    penalty, new_mean = path_length_penalty(lengths, pl_mean, decay=0.01)
    a = 0.3 + 0.01 * (lengths.mean() - 0.3)
    torch.testing.assert_close(new_mean, a)
    torch.testing.assert_close(penalty, ((lengths - a) ** 2).mean())
    penalty.backward()  # differentiable into the synthesis weights (double backward)
    assert g.synthesis.blocks[-1].layers[-1].weight.grad.abs().sum() > 0


def test_lr_multiplier_scales_the_effective_update() -> None:
    torch.manual_seed(0)
    # float64: the slow layer stores 100x larger values, so a float32 step would lose digits to rounding
    slow, fast = EqualizedLinear(16, 8, lr_multiplier=0.01).double(), EqualizedLinear(16, 8, lr_multiplier=1.0).double()
    with torch.no_grad():  # the same run-time weights, stored at different scales
        fast.weight.copy_(slow.effective_weight() / fast.weight_gain)
    torch.testing.assert_close(slow.effective_weight(), fast.effective_weight())
    x, target = torch.randn(32, 16, dtype=torch.float64), torch.randn(32, 8, dtype=torch.float64)
    changes = []
    for layer in (slow, fast):
        before = layer.effective_weight().detach().clone()
        # eps -> 0: Adam's step is then exactly invariant to the gradient's scale
        optimizer = torch.optim.Adam(layer.parameters(), lr=1e-3, betas=(0.0, 0.99), eps=1e-30)
        (layer(x) - target).square().mean().backward()
        optimizer.step()
        changes.append(layer.effective_weight().detach() - before)
    torch.testing.assert_close(changes[0], 0.01 * changes[1], rtol=1e-9, atol=1e-15)
    g = tiny_generator()
    assert all(layer.lr_multiplier == 0.01 for layer in g.mapping.layers)
    assert all(m.lr_multiplier == 1.0 for m in g.synthesis.modules() if isinstance(m, EqualizedLinear))


def test_minibatch_std_any_batch_size() -> None:
    layer = MinibatchStd(group_size=4)
    for n in (1, 3, 6, 8):
        out = layer(torch.randn(n, 4, 4, 4))
        assert out.shape == (n, 5, 4, 4) and torch.isfinite(out).all()
    x = torch.randn(8, 2, 4, 4)
    expected = x.reshape(4, 2, 2, 4, 4).std(dim=0, unbiased=False).mean(dim=(1, 2, 3))  # groups {i, i+2, i+4, i+6}
    torch.testing.assert_close(layer(x)[:, 2, 0, 0], expected.repeat(4), atol=1e-4, rtol=1e-4)


def test_clamp_output_is_linear_in_training_and_clamped_in_eval() -> None:
    torch.manual_seed(0)
    g = tiny_generator(output_activation="clamp")
    with torch.no_grad():
        for block in g.synthesis.blocks:
            block.torgb.bias.fill_(3.0)  # push outputs outside [-1, 1]
        z = torch.randn(2, 8)
        assert g(z).max() > 1
        assert g.eval()(z).max() <= 1


def _stylegan(**kwargs) -> StyleGAN:
    torch.manual_seed(0)
    g = StyleGANGenerator((1, 32, 32), latent_dim=8, w_dim=8, channel_base=64, channel_max=8, mapping_layers=2)
    d = StyleGANDiscriminator((1, 32, 32), channel_base=64, channel_max=8)
    return StyleGAN(g, d, **kwargs)


def test_training_steps_run_and_load_generator_rebuilds(trainer_factory, tmp_path) -> None:
    model = _stylegan(max_generator_steps=4, reg_interval=2, pl_weight=2.0, pl_interval=2, style_mixing_prob=1.0,
                      num_fixed_samples=4)
    trainer = trainer_factory()
    trainer.fit(model, digits_data(batch_size=8))
    assert model.generator_steps == 4 and model.images_seen == 32
    assert model.pl_mean.item() > 0  # the path-length penalty ran and updated its running mean
    assert model.generator.w_avg.abs().sum() > 0
    torch.testing.assert_close(model.generator_ema.w_avg, model.generator.w_avg)  # copied with the buffers
    assert all(torch.isfinite(p).all() for p in model.parameters())
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    generator = load_generator(path)
    assert isinstance(generator, StyleGANGenerator) and generator.latent_dim == 8
    z = torch.randn(4, 8)
    torch.testing.assert_close(generator(z), model.sample(4, z=z))
    torch.testing.assert_close(generator.w_avg, model.generator_ema.w_avg)
    truncated = _stylegan(grid_truncation_psi=0.0, num_fixed_samples=4)
    images, nrow = truncated.grid_images()
    assert images.shape == (4, 1, 32, 32) and nrow is None
    torch.testing.assert_close(images, images[:1].expand_as(images))  # ψ = 0: every sample is G(w̄)


def test_family_rejects_a_plain_generator() -> None:
    from gan_modules.nets import DCGANDiscriminator, DCGANGenerator

    with pytest.raises(TypeError, match="mapping"):
        StyleGAN(DCGANGenerator(base_channels=8), DCGANDiscriminator(base_channels=8))


def test_metrics_score_samples_with_seeded_random_noise(monkeypatch) -> None:
    from types import SimpleNamespace

    from callbacks import generative_metrics
    from callbacks.generative_metrics import GenerativeMetrics

    model = _stylegan()
    for module in model.modules():
        if isinstance(module, NoiseInput):
            module.strength.data.fill_(1.0)  # noise visible in the images (it starts at 0)
    z = torch.randn(4, 8)
    rng = torch.get_rng_state()
    first, again, other = (model.metric_samples(4, None, z, seed) for seed in (1, 1, 2))
    assert torch.equal(torch.get_rng_state(), rng)  # the training RNG is left alone
    torch.testing.assert_close(first, again)
    assert not torch.allclose(first, other) and not torch.allclose(first, model.sample(4, z=z))  # not the const maps
    const = _stylegan(metrics_noise_mode="const")
    torch.testing.assert_close(const.metric_samples(4, None, z, 1), const.sample(4, z=z))
    # the metrics callback scores exactly these samples: batch b's latents and noise seeded by (seed, b)
    scored = {}
    monkeypatch.setattr(generative_metrics, "mode_coverage", lambda rows, modes, std: scored.update(rows=rows) or {})
    callback = GenerativeMetrics(metrics=["modes"], num_samples=6, batch_size=3, seed=5)
    trainer = SimpleNamespace(world_size=1, global_rank=0, datamodule=SimpleNamespace(modes=None, std=None))
    callback._noise_metrics(trainer, model)
    keys = [5 * 1_000_003 + b for b in (0, 1)]
    expected = torch.cat([model.metric_samples(3, None, model.latents(3, torch.Generator().manual_seed(key)), key)
                          for key in keys])
    torch.testing.assert_close(scored["rows"], expected.flatten(1))
    with pytest.raises(ValueError, match="metrics_noise_mode"):
        _stylegan(metrics_noise_mode="none")
