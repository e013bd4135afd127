"""Class-conditional StyleGAN2 and R3GAN: label embedding, projection discriminators, per-class w̄, training."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import digits_data

from gan_modules import R3GAN, StyleGAN, load_generator
from gan_modules.nets import (
    ConditionalR3GANDiscriminator,
    ConditionalR3GANGenerator,
    ConditionalStyleGANDiscriminator,
    ConditionalStyleGANGenerator,
    MappingNetwork,
    R3GANGenerator,
    StyleGANDiscriminator,
    StyleGANGenerator,
)
from gan_modules.nets.conditional import ProjectionHead
from gan_modules.sampling import generate_images, style_mixing_grid

SHAPE = (1, 16, 16)
STYLE = {"latent_dim": 8, "w_dim": 8, "channel_base": 64, "channel_max": 8, "mapping_layers": 2}
STYLE_D = {"channel_base": 64, "channel_max": 8}
R3 = {"widths": [16, 8], "cardinalities": [4, 2], "blocks": [1]}


def _style_g(conditional: bool = True) -> StyleGANGenerator:
    torch.manual_seed(0)
    if conditional:
        return ConditionalStyleGANGenerator(SHAPE, num_classes=3, **STYLE)
    return StyleGANGenerator(SHAPE, **STYLE)


def _r3_g(conditional: bool = True) -> R3GANGenerator:
    torch.manual_seed(0)
    if conditional:
        return ConditionalR3GANGenerator(SHAPE, num_classes=3, latent_dim=8, **R3)
    return R3GANGenerator(SHAPE, latent_dim=8, **R3)


def test_projection_head_without_head_is_the_scaled_inner_product() -> None:
    head = ProjectionHead(None, 2, 2, scale=1 / math.sqrt(2))
    with torch.no_grad():
        head.embed.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    features = torch.tensor([[1.0, 1.0], [2.0, 0.0]])
    logits = head(features, torch.tensor([1, 0]))
    torch.testing.assert_close(logits, torch.tensor([(3 + 4) / math.sqrt(2), 2 / math.sqrt(2)]))


@pytest.mark.parametrize("cls", [ConditionalStyleGANDiscriminator, ConditionalR3GANDiscriminator])
def test_projection_discriminator_logit_is_features_dot_label_embedding(cls) -> None:
    torch.manual_seed(0)
    d = cls(SHAPE, num_classes=3, **(STYLE_D if cls is ConditionalStyleGANDiscriminator else R3))
    feature_layer = d.out if cls is ConditionalStyleGANDiscriminator else d.stages[-1][-1]
    captured = []
    feature_layer.register_forward_hook(lambda module, inputs, output: captured.append(output))
    x, labels = torch.randn(4, *SHAPE), torch.tensor([0, 1, 2, 1])
    logits = d(x, labels)
    features = captured[0].flatten(1)
    dim = features.shape[1]
    assert dim > 1  # features, not one logit
    expected = (features * d.projection.embed.weight[labels]).sum(1) / math.sqrt(dim)
    torch.testing.assert_close(logits, expected)
    other = d(x, (labels + 1) % 3)
    torch.testing.assert_close(captured[1], captured[0])  # the label enters only at the projection
    assert not torch.allclose(other, logits)
    with pytest.raises(ValueError, match="labels"):
        d(x)


@pytest.mark.parametrize("make", [_style_g, _r3_g], ids=["stylegan", "r3gan"])
def test_generator_output_depends_on_the_label(make) -> None:
    g = make().eval()  # StyleGAN in eval mode uses its stored noise maps: the output depends on (z, label) alone
    z1, z2 = torch.randn(2, 8), torch.randn(2, 8)
    labels = torch.tensor([0, 2])
    with torch.no_grad():
        assert not torch.allclose(g(z1, labels), g(z1, torch.tensor([1, 1])))
        # zero the weights that read z: the output is then a function of the label embedding only
        first = g.mapping.layers[0].weight if isinstance(g, StyleGANGenerator) else g.stages[0][0].linear.weight
        first[:, :8] = 0
        out = g(z1, labels)
        torch.testing.assert_close(g(z2, labels), out)  # equal labels, any z: equal images
        assert not torch.allclose(out[0], out[1])  # labels 0 and 2 differ
        torch.testing.assert_close(g(z1, torch.tensor([2, 2]))[0], out[1])
        torch.testing.assert_close(g(z1), g(z1, torch.tensor([0, 1])))  # no labels: classes cycled 0, 1, ...


@pytest.mark.parametrize("make", [_style_g, _r3_g], ids=["stylegan", "r3gan"])
def test_conditional_networks_add_only_the_label_parameters(make) -> None:
    plain, conditional = make(conditional=False), make(conditional=True)
    assert plain.num_classes == 0 and conditional.num_classes == 3
    plain_keys, cond_keys = set(plain.state_dict()), set(conditional.state_dict())
    added = {"mapping.embed.weight", "mapping.embed.bias", "mapping.w_avg_class"} \
        if isinstance(plain, StyleGANGenerator) else {"embed.weight"}
    assert cond_keys - plain_keys == added and plain_keys <= cond_keys
    assert not any("embed" in key or "w_avg_class" in key for key in plain_keys)
    z = torch.randn(2, 8)
    torch.testing.assert_close(plain.eval()(z), plain(z, torch.tensor([0, 1])))  # unconditional: labels ignored


def test_per_class_w_avg_and_truncation_towards_it() -> None:
    torch.manual_seed(0)
    mapping = MappingNetwork(4, 4, num_ws=2, num_layers=2, w_avg_beta=0.5, num_classes=3)
    z, labels = torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 1, 0])
    w = mapping.eval()(z, labels)[:, 0]
    mapping.train()(z, labels)
    for k, members in ((0, [0, 1, 5]), (1, [2, 3, 4])):
        torch.testing.assert_close(mapping.w_avg_class[k], 0.5 * w[members].mean(0))  # lerp(mean, 0, 0.5)
    assert torch.equal(mapping.w_avg_class[2], torch.zeros(4))  # class 2 absent: unchanged
    torch.testing.assert_close(mapping.w_avg, 0.5 * w.mean(0))  # the global w̄ is tracked too
    mapping.eval()
    centre = mapping(z, labels, truncation_psi=0.0)
    torch.testing.assert_close(centre, mapping.w_avg_class[labels][:, None].expand(-1, 2, -1))
    half = mapping(z, labels, truncation_psi=0.5)
    torch.testing.assert_close(half[:, 0], 0.5 * (w + mapping.w_avg_class[labels]))
    with pytest.raises(ValueError, match="pass labels"):
        mapping(z)


def test_families_reject_mixed_conditioning() -> None:
    torch.manual_seed(0)
    with pytest.raises(ValueError, match="discriminator"):
        StyleGAN(_style_g(), StyleGANDiscriminator(SHAPE, **STYLE_D))
    with pytest.raises(ValueError, match="conditional generator"):
        StyleGAN(_style_g(conditional=False), ConditionalStyleGANDiscriminator(SHAPE, num_classes=3, **STYLE_D))
    with pytest.raises(ValueError, match="conditional generator"):
        R3GAN(_r3_g(conditional=False), ConditionalR3GANDiscriminator(SHAPE, num_classes=3, **R3))


def _rows_per_class(model, num_classes: int) -> None:
    """``grid_truncation_psi`` 0: each row is one class's w̄ (identical images), rows differ."""
    images, per_row = model.grid_images()
    assert per_row == len(images) // num_classes
    rows = images.view(num_classes, per_row, *images.shape[1:])
    torch.testing.assert_close(rows, rows[:, :1].expand_as(rows))
    assert not torch.allclose(rows[0, 0], rows[1, 0])


def _fit_and_reload(model, trainer_factory, path, generator_class) -> torch.nn.Module:
    """Fits ``model`` on the digits (its ``max_generator_steps``); the generator ``load_generator`` rebuilds,
    checked to give ``model.sample``'s images for given latents and labels."""
    trainer = trainer_factory()
    trainer.fit(model, digits_data(batch_size=8))
    trainer.save_checkpoint(path)
    generator = load_generator(path)
    assert isinstance(generator, generator_class) and generator.num_classes == 10
    z, labels = torch.randn(4, 8), torch.tensor([3, 1, 9, 1])
    torch.testing.assert_close(generator(z, labels), model.sample(4, labels=labels, z=z))
    return generator


def test_conditional_stylegan_trains_samples_and_reloads(trainer_factory, tmp_path) -> None:
    torch.manual_seed(0)
    g = ConditionalStyleGANGenerator((1, 32, 32), num_classes=10, **STYLE)
    d = ConditionalStyleGANDiscriminator((1, 32, 32), num_classes=10, **STYLE_D)
    model = StyleGAN(g, d, max_generator_steps=3, reg_interval=2, pl_weight=2.0, pl_interval=2, style_mixing_prob=1.0,
                     num_fixed_samples=20, grid_truncation_psi=0.0)
    generator = _fit_and_reload(model, trainer_factory, tmp_path / "model.ckpt", ConditionalStyleGANGenerator)
    assert model.generator_steps == 3 and model.pl_mean.item() > 0
    tracked = model.generator.mapping.w_avg_class.abs().sum(1) > 0
    assert tracked.sum() >= 2  # the classes of the batches seen got a w̄
    _rows_per_class(model, 10)
    z, labels = torch.randn(4, 8), torch.tensor([3, 1, 4, 1])
    # metrics: seeded random noise, and the label matters
    first, again = (model.metric_samples(4, labels, z, 7) for _ in range(2))
    torch.testing.assert_close(first, again)
    assert not torch.allclose(first, model.metric_samples(4, (labels + 1) % 10, z, 7))
    # generate.py's sampling: ψ = 0 and a class gives that class's w̄ for every seed
    k = int(tracked.nonzero()[0])
    images = generate_images(generator, [0, 1, 2], truncation=0.0, class_index=k)
    torch.testing.assert_close(images, images[:1].expand_as(images))
    w = generator.mapping.w_avg_class[k][None, None].expand(1, generator.num_ws, -1)
    torch.testing.assert_close(images[:1], generator.synthesis(w))
    grid = style_mixing_grid(generator, [0, 1], [2, 3], crossover=2, class_index=k)
    assert grid.shape == (9, 1, 32, 32)


def test_conditional_r3gan_trains_and_reloads(trainer_factory, tmp_path) -> None:
    torch.manual_seed(0)
    g = ConditionalR3GANGenerator((1, 32, 32), num_classes=10, latent_dim=8, **R3)
    d = ConditionalR3GANDiscriminator((1, 32, 32), num_classes=10, **R3)
    model = R3GAN(g, d, max_generator_steps=2, num_fixed_samples=20)
    _fit_and_reload(model, trainer_factory, tmp_path / "model.ckpt", ConditionalR3GANGenerator)
    assert model.generator_steps == 2
    images, per_row = model.grid_images()
    assert images.shape == (20, 1, 32, 32) and per_row == 2


def test_ppl_in_w_maps_both_ends_with_the_path_class() -> None:
    from callbacks.metrics.ppl import path_length_samples

    g = _style_g().eval()

    def distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a - b).flatten(1).square().sum(1)

    assert path_length_samples(g, distance, num_samples=4, space="w", batch_size=2).min() > 0
    with torch.no_grad():
        g.mapping.layers[0].weight[:, :8] = 0  # w depends on the label only: both ends of a path are one w
    assert torch.equal(path_length_samples(g, distance, num_samples=4, space="w", batch_size=2), torch.zeros(4, dtype=torch.float64))
