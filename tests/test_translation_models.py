"""Translation families and networks: pix2pix, CycleGAN, SRGAN, inpainting (synthetic data, tiny nets)."""

from __future__ import annotations

import inspect

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from conftest import make_trainer
from torch.utils.data import DataLoader

from datamodules.base import GANDataModule
from gan_modules import SRGAN, CycleGAN, InpaintingGAN, Pix2Pix, load_generator
from gan_modules.cyclegan import ImagePool
from gan_modules.inpainting import masked_reconstruction
from gan_modules.nets import (
    NETWORKS,
    ImageToImageNetwork,
    InpaintingGenerator,
    PatchDiscriminator,
    ResnetGenerator,
    SRDiscriminator,
    SRResNetGenerator,
    UNetGenerator,
    patchgan,
    resnet_gen,
    srresnet,
    unet,
)
from gan_modules.nets.patchgan import receptive_field
from gan_modules.schedules import LinearDecayLR, linear_decay
from gan_modules.translation import display_columns

# ------------------------------------------------------------------------------------------ networks

NET_CASES = [
    (UNetGenerator, dict(sample_shape=(3, 32, 32), input_shape=(1, 32, 32), base_channels=8)),
    (UNetGenerator, dict(sample_shape=(3, 48, 48), base_channels=8, norm="instance")),  # 3x3 bottleneck
    (PatchDiscriminator, dict(sample_shape=(3, 32, 32), input_shape=(1, 32, 32), conditional=True, base_channels=8)),
    (PatchDiscriminator, dict(sample_shape=(1, 64, 64), base_channels=8, n_layers=2, spectral_norm=True)),
    (ResnetGenerator, dict(sample_shape=(3, 32, 32), base_channels=8, n_blocks=2)),
    (ResnetGenerator, dict(sample_shape=(3, 32, 32), input_shape=(1, 32, 32), base_channels=8, n_blocks=1, dropout=0.5)),
    (ResnetGenerator, dict(sample_shape=(3, 16, 16), base_channels=8, n_blocks=1, upsampling="nearest")),
    (SRResNetGenerator, dict(sample_shape=(3, 32, 32), base_channels=8, n_blocks=2)),
    (SRResNetGenerator, dict(sample_shape=(1, 32, 32), input_shape=(1, 16, 16), base_channels=8, n_blocks=1)),
    (SRDiscriminator, dict(sample_shape=(3, 32, 32), base_channels=8, dense_dim=16)),
    (InpaintingGenerator, dict(sample_shape=(3, 32, 32), base_channels=8)),
]


def _id(case) -> str:
    cls, kwargs = case
    return cls.__name__ + "-" + "x".join(map(str, kwargs["sample_shape"]))


def test_translation_networks_are_registered() -> None:
    for module in (unet, patchgan, resnet_gen, srresnet):
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, ImageToImageNetwork) and obj is not ImageToImageNetwork:
                assert NETWORKS[obj.__name__] is obj
                params = list(inspect.signature(obj.__init__).parameters)
                assert params[1] == "sample_shape"  # train.py links data.sample_shape / input_shape by name
                assert obj.is_generator == ("input_shape" in params and obj is not PatchDiscriminator)


@pytest.mark.parametrize("case", NET_CASES, ids=[_id(c) for c in NET_CASES])
def test_network_shapes_and_backward(case) -> None:
    cls, kwargs = case
    torch.manual_seed(0)
    net = cls(**kwargs)
    assert net.latent_dim == 0 and net.num_classes == 0
    out = net(*net.example_inputs(2))
    if net.is_generator:
        assert out.shape == (2, *kwargs["sample_shape"]) and out.abs().max() <= 1
    elif cls is PatchDiscriminator:
        assert out.dim() == 4 and out.shape[:2] == (2, 1)
    else:
        assert out.shape == (2,)
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_unet_dropout_is_the_noise_at_inference() -> None:
    torch.manual_seed(0)
    net = UNetGenerator((3, 32, 32), base_channels=8).eval()
    x = net.example_inputs(2)[0]
    with torch.no_grad():
        assert not torch.allclose(net(x), net(x))  # dropout still on in eval mode
        torch.manual_seed(1)
        first = net(x)
        torch.manual_seed(1)
        assert torch.equal(first, net(x))  # and reproducible under a seed
    plain = UNetGenerator((3, 32, 32), base_channels=8, dropout_at_inference=False).eval()
    with torch.no_grad():
        assert torch.equal(plain(x), plain(x))
    dropouts = [m for m in net.modules() if isinstance(m, unet.AlwaysDropout)]
    assert len(dropouts) == 3  # the three decoder layers after the innermost one, as unet_256


def test_unet_paper_depth_and_widths() -> None:
    net = UNetGenerator((3, 256, 256), base_channels=4)
    downs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in downs] == [4, 8, 16, 32, 32, 32, 32, 32]  # unet_256: 8 downs, capped at 8C


@pytest.mark.parametrize("n_layers,expected", [(1, 16), (2, 34), (3, 70), (5, 286)])
def test_patchgan_receptive_field_analytic(n_layers: int, expected: int) -> None:
    assert receptive_field(n_layers) == expected  # the paper's 16x16, 70x70 and 286x286 PatchGANs


def test_patchgan_receptive_field_is_70_measured() -> None:
    # The input pixels that influence one interior logit span exactly 70x70 for n_layers = 3.
    torch.manual_seed(0)
    d = PatchDiscriminator((1, 160, 160), base_channels=4, norm="none")
    x = torch.randn(1, 1, 160, 160, requires_grad=True)
    out = d(x)
    i, j = out.shape[2] // 2, out.shape[3] // 2
    out[0, 0, i, j].backward()
    rows = x.grad[0, 0].abs().sum(1).nonzero().flatten()
    cols = x.grad[0, 0].abs().sum(0).nonzero().flatten()
    assert rows.min() > 0 and rows.max() < 159  # interior: the window is not cut by the border
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70


def test_resnet_generator_structure() -> None:
    net = ResnetGenerator((3, 64, 64), base_channels=4, n_blocks=6)
    assert sum(isinstance(m, resnet_gen.ResnetBlock) for m in net.modules()) == 6
    assert all(not isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert isinstance(net.body[0], torch.nn.ReflectionPad2d)


def test_resnet_generator_nearest_upsampling_has_no_checkerboard() -> None:
    """A constant input gives a constant output away from the border with ``upsampling="nearest"``; the
    stride-2 transposed convolution's uneven overlap paints a period-2 pattern on the same input."""
    x = torch.full((1, 3, 64, 64), 0.3)  # 64 px: the zero padding's border effect does not reach the centre
    for upsampling, periodic in (("nearest", False), ("transpose", True)):
        torch.manual_seed(0)
        net = ResnetGenerator((3, 64, 64), base_channels=4, n_blocks=1, n_downsampling=2, norm="none",
                              init="default", upsampling=upsampling)
        with torch.no_grad():
            inner = net(x)[0, :, 28:36, 28:36]
        spread = float((inner - inner.mean((1, 2), keepdim=True)).abs().max())
        assert (spread > 1e-4) == periodic, (upsampling, spread)  # about 0.02 for the transposed convolution
    with pytest.raises(ValueError, match="upsampling"):
        ResnetGenerator((3, 32, 32), upsampling="bilinear")


def test_srresnet_scale_from_shapes() -> None:
    net = SRResNetGenerator((3, 64, 64), (3, 8, 8), base_channels=4, n_blocks=1)
    assert net.scale == 8 and sum(isinstance(m, torch.nn.PixelShuffle) for m in net.modules()) == 3
    assert SRResNetGenerator((3, 32, 32), base_channels=4, n_blocks=1).input_shape == (3, 8, 8)
    with pytest.raises(ValueError, match="power of two"):
        SRResNetGenerator((3, 48, 48), (3, 16, 16), base_channels=4)


def test_srresnet_input_skip_adds_the_interpolation() -> None:
    torch.manual_seed(0)
    net = SRResNetGenerator((3, 32, 32), (3, 8, 8), base_channels=4, n_blocks=1, input_skip="bicubic")
    for p in net.tail[-1].parameters():  # a zero residual leaves the bicubic upsampling
        torch.nn.init.zeros_(p)
    x = net.example_inputs(2)[0]
    expected = F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False).clamp(-1, 1)
    torch.testing.assert_close(net(x), expected)
    with pytest.raises(ValueError, match="channels"):
        SRResNetGenerator((3, 32, 32), (1, 8, 8), input_skip="nearest")
    with pytest.raises(ValueError, match="bicubic, nearest"):
        SRResNetGenerator(input_skip="bilinear")


def test_input_shape_errors_name_the_shapes() -> None:
    g = UNetGenerator((3, 32, 32), (1, 32, 32), base_channels=4)
    with pytest.raises(ValueError, match=r"UNetGenerator expects \[N, 1, 32, 32\]"):
        g(torch.randn(2, 3, 32, 32))
    with pytest.raises(ValueError, match="height and width"):
        UNetGenerator((3, 32, 32), (1, 16, 16))
    d = PatchDiscriminator((3, 32, 32), (1, 32, 32), conditional=True, base_channels=4)
    with pytest.raises(ValueError, match="conditional"):
        d(torch.randn(2, 3, 32, 32))


def test_inpainting_generator_keeps_known_pixels() -> None:
    torch.manual_seed(0)
    net = InpaintingGenerator((3, 32, 32), base_channels=4)
    x, mask = net.example_inputs(2)
    out = net(x, mask)
    known = mask.expand_as(x) == 0
    assert torch.equal(out[known], x[known]) and not torch.equal(out[~known], x[~known])


def test_display_columns_mixed_sizes_and_channels() -> None:
    gray_low, color = torch.zeros(2, 1, 8, 8), torch.ones(2, 3, 32, 32)
    grid = display_columns([gray_low, color, color])
    assert grid.shape == (6, 3, 32, 32)
    assert torch.equal(grid[0], torch.zeros(3, 32, 32)) and torch.equal(grid[1], color[0])


# ------------------------------------------------------------------------------------ losses, schedules


def _pix2pix(**kwargs) -> Pix2Pix:
    torch.manual_seed(0)
    g = UNetGenerator((3, 16, 16), (1, 16, 16), base_channels=4, dropout=0.0, norm="instance")
    d = PatchDiscriminator((3, 16, 16), (1, 16, 16), conditional=True, base_channels=4, n_layers=1, norm="none")
    return Pix2Pix(g, d, **kwargs)


def test_pix2pix_losses_match_hand_computation() -> None:
    model = _pix2pix()
    torch.manual_seed(1)
    batch = {"input": torch.rand(2, 1, 16, 16) * 2 - 1, "target": torch.rand(2, 3, 16, 16) * 2 - 1}
    x, y = batch["input"], batch["target"]
    with torch.no_grad():
        fake = model.generator(x)
        real_logits = model.discriminator(y, x)
        fake_logits = model.discriminator(fake, x)
        d_expected = 0.5 * (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
        g_expected = (F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
                      + 100 * (fake - y).abs().mean())
        d_out, g_out = model.discriminator_loss(batch, 1.0), model.generator_loss(batch)
    torch.testing.assert_close(d_out["loss"], d_expected)
    torch.testing.assert_close(g_out["loss"], g_expected)
    torch.testing.assert_close(g_out["loss/G/l1"], (fake - y).abs().mean())
    # the conditional D reads concat(input, image): the same weights on an explicit concatenation
    torch.testing.assert_close(model.discriminator.body(torch.cat([x, y], 1)), real_logits)


def _cyclegan(pool_size: int = 50, **kwargs) -> CycleGAN:
    torch.manual_seed(0)
    g = ResnetGenerator((3, 16, 16), base_channels=4, n_blocks=1)
    d = PatchDiscriminator((3, 16, 16), base_channels=4, n_layers=1, norm="instance")
    return CycleGAN(g, d, pool_size=pool_size, **kwargs)


def test_cyclegan_builds_the_mirrored_pair_with_fresh_weights() -> None:
    torch.manual_seed(0)
    g = ResnetGenerator((3, 16, 16), (1, 16, 16), base_channels=4, n_blocks=1)
    d = PatchDiscriminator((3, 16, 16), (1, 16, 16), base_channels=4, n_layers=1)
    model = CycleGAN(g, d, identity_weight=0.0)
    assert (model.generator_ba.input_shape, model.generator_ba.sample_shape) == ((3, 16, 16), (1, 16, 16))
    assert model.discriminator_a.sample_shape == (1, 16, 16)
    first = next(model.generator_ba.parameters())
    assert not torch.equal(first, next(model.generator.parameters())[: first.shape[0], : first.shape[1]])
    with pytest.raises(ValueError, match="identity"):
        CycleGAN(g, d)  # identity needs A and B of one shape


def test_cyclegan_cycle_and_identity_losses() -> None:
    model = _cyclegan()
    torch.manual_seed(1)
    a, b = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    G, Fn, D_B, D_A = model.generator, model.generator_ba, model.discriminator, model.discriminator_a
    with torch.no_grad():
        out = model.generator_loss({"A": a, "B": b})
        cycle = (Fn(G(a)) - a).abs().mean() + (G(Fn(b)) - b).abs().mean()
        identity = (G(b) - b).abs().mean() + (Fn(a) - a).abs().mean()
        adversarial = ((D_B(G(a)) - 1) ** 2).mean() + ((D_A(Fn(b)) - 1) ** 2).mean()  # the paper's MSE form
    torch.testing.assert_close(out["loss/G/cycle"], cycle)
    torch.testing.assert_close(out["loss/G/identity"], identity)
    torch.testing.assert_close(out["loss"], adversarial + 10 * cycle + 5 * identity)


def test_image_pool_semantics_and_state_round_trip() -> None:
    pool = ImagePool(size=50, seed=3)
    first = torch.arange(50.0).view(50, 1, 1, 1)
    assert torch.equal(pool.query(first), first) and pool.count == 50  # the first 50 are stored and returned
    swaps = 0
    for step in range(40):
        new = 1000.0 + 10 * step + torch.arange(10.0).view(10, 1, 1, 1)
        seen = set(pool.images.flatten().tolist())
        out = pool.query(new)
        for k in range(10):
            if out[k].item() != new[k].item():  # swapped: a stored image comes out, the new one goes in
                swaps += 1
                assert out[k].item() in seen
            seen.add(new[k].item())
        assert set(pool.images.flatten().tolist()) <= seen and pool.count == 50
    assert 0.4 < swaps / 400 < 0.6  # each image is swapped with probability 1/2

    clone = ImagePool(size=50)
    clone.load_state_dict(pool.state_dict())
    batch = torch.randn(6, 1, 1, 1)
    assert torch.equal(pool.query(batch), clone.query(batch)) and torch.equal(pool.images, clone.images)
    assert torch.equal(ImagePool(size=0).query(batch), batch)


def test_linear_decay_values_and_scheduler() -> None:
    values = [linear_decay(t, 100, 100) for t in (0, 99, 100, 150, 199, 200, 300)]
    assert values[:2] == [1.0, 1.0] and values[-2:] == [0.0, 0.0]
    assert values[2] == pytest.approx(1 - 1 / 101) and values[3] == pytest.approx(1 - 51 / 101)
    assert values[4] == pytest.approx(1 / 101)
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=2e-4)
    scheduler = LinearDecayLR(optimizer, constant=2, decay=3)
    lrs = []
    for _ in range(6):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([2e-4, 2e-4, 1.5e-4, 1e-4, 0.5e-4, 0.0])
    resumed = LinearDecayLR(torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=2e-4), constant=2, decay=3)
    resumed.load_state_dict(scheduler.state_dict())
    assert resumed.get_last_lr() == scheduler.get_last_lr()


def _srgan(**kwargs) -> SRGAN:
    torch.manual_seed(0)
    g = SRResNetGenerator((3, 32, 32), (3, 8, 8), base_channels=4, n_blocks=1)
    d = SRDiscriminator((3, 32, 32), base_channels=4, dense_dim=8)
    return SRGAN(g, d, **kwargs)


def test_srgan_missing_vgg_file_error_names_file_and_option(tmp_path) -> None:
    missing = tmp_path / "nowhere" / "vgg19.pth"
    with pytest.raises(FileNotFoundError, match="vgg_weights_path") as error:
        _srgan(vgg_weight=0.006, vgg_weights_path=str(missing))
    assert str(missing) in str(error.value)
    with pytest.raises(ValueError, match="vgg_weights_path"):
        _srgan(vgg_weight=0.006)


@pytest.mark.parametrize("layer,index", [("relu2_2", 8), ("relu5_4", 35)])
def test_srgan_vgg_loss_matches_torchvision(tmp_path, layer: str, index: int) -> None:
    from torchvision.models import vgg

    torch.manual_seed(0)
    features = vgg.make_layers(vgg.cfgs["E"])  # torchvision's vgg19.features, randomly initialised
    path = tmp_path / "vgg19.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    model = _srgan(vgg_weight=0.5, vgg_weights_path=str(path), vgg_layer=layer)
    assert not any(k.startswith("vgg") for k in model.state_dict())  # not saved in checkpoints
    batch = {"input": torch.rand(2, 3, 8, 8) * 2 - 1, "target": torch.rand(2, 3, 32, 32) * 2 - 1}
    with torch.no_grad():
        fake = model.generator(batch["input"])
        mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        phi = features[: index + 1]
        expected = F.mse_loss(phi(((fake + 1) / 2 - mean) / std), phi(((batch["target"] + 1) / 2 - mean) / std))
        out = model.generator_loss(batch)
    torch.testing.assert_close(out["loss/G/vgg"], expected, rtol=1e-4, atol=1e-6)
    assert "loss/G/mse" in out and "loss/G/adv" in out


def test_srgan_adversarial_warmup() -> None:
    model = _srgan(adversarial_warmup_steps=3)
    assert [model.adversarial_weight_at(s) for s in (0, 2, 3)] == [0.0, 0.0, 1e-3]


def test_masked_reconstruction_averages_over_the_hole() -> None:
    out, target = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :2] = 1
    target[..., 2:, 2:] = 5.0  # outside the hole: ignored
    assert masked_reconstruction(out, target, mask, "l2").item() == 1.0
    assert masked_reconstruction(out, 3 * target, mask, "l1").item() == 3.0


# ------------------------------------------------------------------------------------------ training


class SyntheticPairs(GANDataModule):
    """Paired or unpaired synthetic data: target = a fixed function of the input."""

    def __init__(self, kind: str, size: int = 16, batch_size: int = 4, n: int = 16) -> None:
        super().__init__(batch_size=batch_size, predict_samples=5)
        g = torch.Generator().manual_seed(0)
        x = torch.rand(n, 1 if kind == "gray" else 3, size, size, generator=g) * 2 - 1
        if kind == "gray":  # gray -> colour
            items = [{"input": x[i], "target": x[i].repeat(3, 1, 1) * torch.tensor([1.0, 0.5, -1.0]).view(3, 1, 1)}
                     for i in range(n)]
        elif kind == "sr":
            items = [{"input": F.avg_pool2d(x[i][None], 4)[0], "target": x[i]} for i in range(n)]
        elif kind == "inpaint":
            mask = torch.zeros(1, size, size)
            mask[:, size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 1
            items = [{"input": x[i] * (1 - mask), "target": x[i], "mask": mask} for i in range(n)]
        else:  # unpaired: B = a colour permutation of A, shuffled
            items = [{"A": x[i], "B": x[(i * 5) % n][[2, 0, 1]]} for i in range(n)]
        self.items, self.kind = items, kind
        self._shapes = (tuple(items[0]["input" if kind != "cycle" else "A"].shape),
                        tuple(items[0]["target" if kind != "cycle" else "B"].shape))

    @property
    def sample_shape(self):
        return self._shapes[1]

    @property
    def input_shape(self):
        return self._shapes[0]

    def setup(self, stage=None) -> None:
        self.train_set = self.val_set = self.items

    def predict_dataloader(self) -> DataLoader:
        key = "A" if self.kind == "cycle" else "input"
        extra = ("mask",) if self.kind == "inpaint" else ()
        items = [{"index": torch.tensor(i), key: it[key], **{k: it[k] for k in extra}} for i, it in enumerate(self.items[:5])]
        return DataLoader(items, batch_size=2)


def _family(kind: str, **kwargs):
    torch.manual_seed(0)
    if kind == "gray":
        return Pix2Pix(UNetGenerator((3, 16, 16), (1, 16, 16), base_channels=4),
                       PatchDiscriminator((3, 16, 16), (1, 16, 16), conditional=True, base_channels=4, n_layers=1), **kwargs)
    if kind == "sr":
        return SRGAN(SRResNetGenerator((3, 16, 16), (3, 4, 4), base_channels=4, n_blocks=1),
                     SRDiscriminator((3, 16, 16), base_channels=4, n_stages=2, dense_dim=8), **kwargs)
    if kind == "inpaint":
        return InpaintingGAN(InpaintingGenerator((3, 16, 16), base_channels=4),
                             PatchDiscriminator((3, 16, 16), base_channels=4, n_layers=1), **kwargs)
    return _cyclegan(pool_size=6, **kwargs)


@pytest.mark.parametrize("kind", ["gray", "sr", "inpaint", "cycle"])
def test_family_trains_grids_predicts_and_reloads(tmp_path, kind: str) -> None:
    model, data = _family(kind, max_generator_steps=3), SyntheticPairs(kind)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = make_trainer(tmp_path, limit_val_batches=1, check_val_every_n_epoch=1, log_every_n_steps=1)
    trainer.fit(model, data)
    assert model.generator_steps == 3 and model.images_seen == 12
    nets = ["generator.", "discriminator."] + (["generator_ba.", "discriminator_a."] if kind == "cycle" else [])
    for prefix in nets:
        changed = [k for k in before if k.startswith(prefix) and not torch.equal(before[k], model.state_dict()[k])]
        assert changed, f"{prefix} did not train"
    metrics = trainer.callback_metrics
    assert {"loss/D", "loss/G"} <= set(metrics)
    assert ("val/cycle/l1" if kind == "cycle" else "val/psnr") in metrics

    images, nrow = model.grid_images()
    assert nrow == 3 and images.shape == (3 * 8, 3, 16, 16)  # the first 8 validation items (two batches)
    assert torch.equal(model.fixed_batch[model.input_key], torch.stack([it[model.input_key] for it in data.items[:8]]))

    predictions = trainer.predict(model, data)
    assert predictions[0]["image"].shape == (2, *model.sample_shape) and predictions[0]["index"].tolist() == [0, 1]
    again = trainer.predict(model, data)
    assert torch.equal(predictions[0]["image"], again[0]["image"])  # seeded, dropout included
    if kind == "inpaint":
        known = data.items[0]["mask"].expand(3, -1, -1) == 0
        assert torch.equal(predictions[0]["image"][0][known], data.items[0]["input"][known])  # copied exactly

    ckpt = tmp_path / "model.ckpt"
    trainer.save_checkpoint(ckpt)
    generator = load_generator(ckpt)
    x = model.fixed_batch[model.input_key][:2]
    args = (x, model.fixed_batch["mask"][:2]) if kind == "inpaint" else (x,)
    with torch.no_grad():
        torch.manual_seed(5)
        expected = model.generator.eval()(*args)
        torch.manual_seed(5)
        torch.testing.assert_close(generator(*args), expected)
    restored = _family(kind)
    restored.on_load_checkpoint(torch.load(ckpt, weights_only=True))
    assert all(torch.equal(restored.fixed_batch[k], v) for k, v in model.fixed_batch.items())
    if kind == "cycle":
        assert restored.pool_b.count == 6 and torch.equal(restored.pool_b.images, model.pool_b.images.cpu())


class LossLog(L.Callback):
    def __init__(self) -> None:
        self.losses: list[tuple[float, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append((outputs["loss/D"].item(), outputs["loss/G"].item()))


def test_cyclegan_resume_is_exact(tmp_path) -> None:
    # The pools (contents and RNG) travel in the checkpoint: stop at 2 and resume to 4 == 4 straight.
    def fit(steps: int, root, ckpt_path=None, save_at=None):
        L.seed_everything(0)
        model, data = _family("cycle", max_generator_steps=steps), SyntheticPairs("cycle", n=12)  # 3 batches an epoch
        log = LossLog()
        callbacks = [log]
        if save_at is not None:
            callbacks.append(SaveAtStep(save_at, tmp_path / "k.ckpt"))
        trainer = make_trainer(root, callbacks=callbacks)
        trainer.fit(model, data, ckpt_path=ckpt_path)
        return model, log.losses

    full, full_losses = fit(4, tmp_path / "full")
    fit(3, tmp_path / "first", save_at=2)
    resumed, resumed_losses = fit(4, tmp_path / "resumed", ckpt_path=str(tmp_path / "k.ckpt"))
    assert resumed_losses == full_losses[2:]
    for key, value in full.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=0, msg=key)
    assert torch.equal(full.pool_a.images, resumed.pool_a.images)


class SaveAtStep(L.Callback):
    def __init__(self, step: int, path) -> None:
        self.step, self.path = step, path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.generator_steps == self.step:
            trainer.save_checkpoint(self.path)


def test_translation_modules_reject_noise_generators() -> None:
    from gan_modules.nets import DCGANDiscriminator, DCGANGenerator

    with pytest.raises(TypeError, match="input_shape"):
        Pix2Pix(DCGANGenerator(base_channels=4), DCGANDiscriminator(base_channels=4))
    model = _pix2pix()
    with pytest.raises(KeyError, match="input, target"):
        model.generator_loss({"image": torch.zeros(2, 3, 16, 16)})
    with pytest.raises(ValueError, match="input_shape"):
        model.generator_loss({"input": torch.zeros(2, 3, 16, 16), "target": torch.zeros(2, 3, 16, 16)})


# ------------------------------------------------------------------ benchmarks/translation_quality.py


def test_score_curve_matches_the_final_scores(tmp_path) -> None:
    # --curve's callback: one record per N generator steps for the raw and the EMA generator; the last
    # record equals the scores of the trained module on the same test patches.
    import importlib
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    tq = importlib.import_module("benchmarks.translation_quality")

    class WithTestSet(SyntheticPairs):
        def setup(self, stage=None) -> None:
            super().setup(stage)
            self.test_set = self.items[:6]

        def test_dataloader(self) -> DataLoader:
            return DataLoader(self.test_set, batch_size=4)

    model, data = _family("sr", max_generator_steps=4, ema_decay=0.5), WithTestSet("sr")
    path = tmp_path / "curve.jsonl"
    trainer = make_trainer(tmp_path, callbacks=[tq.ScoreCurve(every=2, path=str(path))])
    trainer.fit(model, data)

    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4]
    assert records[0]["raw"] != records[1]["raw"]  # the generator trained in between
    for name, net in (("raw", model.generator), ("ema", model.generator_ema)):
        out, trivial, truth = tq.translate_test_set(data, lambda b, net=net: model.translate(b, net), 0)
        assert records[-1][name] == tq.scores(out, truth)
        assert out.shape == truth.shape == (6, 3, 16, 16)
    assert tq.scores(trivial, truth)["psnr"] > 0  # bicubic of the 4 px input
    # split="val" (--val) reads the val loader: the datamodule's val items, not the test ones
    val_out, _, val_truth = tq.translate_test_set(data, lambda b: model.translate(b, model.generator), 0, split="val")
    assert torch.equal(val_truth, torch.stack([item["target"] for item in data.val_dataloader().dataset]))
    assert len(val_truth) != len(truth) and val_out.shape == val_truth.shape
    rows = tq.curve_table("srgan", path)
    assert len(rows) == 2 and rows[0].startswith("| srgan | 2 | ") and rows[0].count("/") == 4
