"""Conditional families: conditional networks, cGAN / AC-GAN losses by hand, training, predict layout, grids."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import digits_data, make_trainer
from torch import nn

from callbacks import ImageWriter, SampleGrid
from callbacks.images import to_uint8
from datamodules import DigitsDataModule, ImageFolderDataModule
from gan_modules import ACGAN, ConditionalGAN
from gan_modules.nets import (
    ACGANDiscriminator,
    ConditionalDCGANDiscriminator,
    ConditionalDCGANGenerator,
    ConditionalMLPDiscriminator,
    ConditionalMLPGenerator,
    DCGANGenerator,
)

K = 10

# ------------------------------------------------------------------------------------------- networks


def _tiny_g(**kw) -> ConditionalDCGANGenerator:
    return ConditionalDCGANGenerator((1, 32, 32), num_classes=K, latent_dim=8, base_channels=8, **kw)


def _tiny_d(conditioning: str, **kw) -> ConditionalDCGANDiscriminator:
    return ConditionalDCGANDiscriminator((1, 32, 32), num_classes=K, conditioning=conditioning, base_channels=8, **kw)


@pytest.mark.parametrize("make", [
    lambda: _tiny_g(), lambda: _tiny_g(embed_dim=5), lambda: ConditionalMLPGenerator((2,), num_classes=K, latent_dim=4),
], ids=["dcgan-onehot", "dcgan-embed", "mlp"])
def test_generator_output_depends_on_the_label(make):
    torch.manual_seed(0)
    g = make().eval()
    z = torch.randn(4, g.latent_dim).repeat(2, 1)
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7])
    out = g(z, labels)
    assert out.shape == (8, *g.sample_shape)
    assert (out[:4] - out[4:]).abs().amax(dim=tuple(range(1, out.dim()))).min() > 1e-4  # same z, other class
    torch.testing.assert_close(g(z), g(z, torch.arange(8) % K))  # no labels: classes cycled, like sample()


@pytest.mark.parametrize("make", [
    lambda: _tiny_d("concat"), lambda: _tiny_d("projection"), lambda: _tiny_d("projection", norm="none", spectral_norm=True),
    lambda: ConditionalMLPDiscriminator((2,), num_classes=K, conditioning="concat"),
    lambda: ConditionalMLPDiscriminator((2,), num_classes=K, conditioning="projection", spectral_norm=True),
], ids=["concat", "projection", "projection-sn", "mlp-concat", "mlp-projection-sn"])
def test_discriminator_output_depends_on_the_label_and_backpropagates(make):
    torch.manual_seed(0)
    d = make()
    x = (torch.rand(4, *d.sample_shape) * 2 - 1).requires_grad_(True)
    a, b = d(x, torch.tensor([0, 1, 2, 3])), d(x, torch.tensor([9, 8, 7, 6]))
    assert a.shape == (4,) and torch.isfinite(a).all()
    assert (a - b).abs().min() > 1e-6
    (a.sum() - b.sum()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in d.parameters())


def test_projection_logit_is_linear_plus_inner_product_with_the_class_embedding():
    torch.manual_seed(0)
    d = _tiny_d("projection").eval()
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    y = torch.tensor([1, 4, 7])
    phi = d.trunk(x)  # [3, width, 4, 4]
    expected = d.head.head(phi).flatten() + (d.head.embed.weight[y] * phi.flatten(1)).sum(1)
    torch.testing.assert_close(d(x, y), expected)
    # the class enters only through <embed(y), phi(x)>
    y2 = torch.tensor([2, 2, 2])
    diff = ((d.head.embed.weight[y] - d.head.embed.weight[y2]) * phi.flatten(1)).sum(1)
    torch.testing.assert_close(d(x, y) - d(x, y2), diff, atol=1e-5, rtol=1e-4)


def test_concat_discriminator_sees_one_hot_label_maps():
    d = _tiny_d("concat")
    first = d.trunk[0]
    assert isinstance(first, nn.Conv2d) and first.in_channels == 1 + K


def test_acgan_discriminator_has_two_heads_and_ignores_labels():
    torch.manual_seed(0)
    d = ACGANDiscriminator((1, 32, 32), num_classes=K, base_channels=8).eval()
    x = torch.rand(5, 1, 32, 32) * 2 - 1
    logits, classes = d(x)
    assert logits.shape == (5,) and classes.shape == (5, K)
    for a, b in zip(d(x, torch.zeros(5, dtype=torch.long)), (logits, classes), strict=True):
        torch.testing.assert_close(a, b)


def test_bad_labels_give_clear_errors():
    d = _tiny_d("concat")
    x = torch.randn(2, 1, 32, 32)
    with pytest.raises(ValueError, match="is conditional"):
        d(x, None)
    with pytest.raises(ValueError, match=r"labels \[N=2\]"):
        d(x, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"labels \[N=2\]"):
        _tiny_g()(torch.randn(2, 8), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="unknown conditioning 'add'"):
        _tiny_d("add")
    with pytest.raises(ValueError, match="num_classes must be >= 1"):
        ConditionalDCGANGenerator(num_classes=0, base_channels=8)
    with pytest.raises(ValueError, match="num_layers >= 2"):
        ConditionalMLPDiscriminator(conditioning="projection", num_layers=1)


# ------------------------------------------------------------------------- losses by hand on stubs


class StubG(nn.Module):
    """``G(z, y) = z A + B[y]``: 3-d samples from a 2-d latent, 2 classes."""

    latent_dim, sample_shape, num_classes = 2, (3,), 2

    def __init__(self) -> None:
        super().__init__()
        self.A = nn.Parameter(torch.tensor([[0.5, -1.0, 0.2], [0.3, 0.8, -0.6]]))
        self.B = nn.Parameter(torch.tensor([[0.1, 0.0, -0.2], [-0.3, 0.4, 0.1]]))

    def forward(self, z, labels):
        return z @ self.A + self.B[labels]


class StubProjectionD(nn.Module):
    """``D(x, y) = x w + <V[y], x>``."""

    num_classes = 2

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([0.7, -0.4, 1.1]))
        self.V = nn.Parameter(torch.tensor([[0.2, 0.5, -0.3], [-0.6, 0.1, 0.4]]))

    def forward(self, x, labels):
        return x @ self.w + (self.V[labels] * x).sum(1)


class StubACD(nn.Module):
    """``D(x) = (x w, x W)``: a real/fake logit and 2 class logits."""

    num_classes = 2

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([0.7, -0.4, 1.1]))
        self.W = nn.Parameter(torch.tensor([[1.0, -0.5], [0.3, 0.9], [-0.8, 0.2]]))

    def forward(self, x, labels=None):
        return x @ self.w, x @ self.W


Z = torch.tensor([[0.3, -1.2], [1.5, 0.4], [-0.7, 0.9], [0.2, 0.1]])
REAL = torch.tensor([[0.9, -0.1, 0.4], [-0.5, 0.6, 0.2], [0.1, 0.1, -0.9], [0.7, -0.8, 0.3]])
LABELS = torch.tensor([0, 1, 1, 0])
BATCH = {"image": REAL, "label": LABELS}


def _fixed_latents(module):
    module.latents = lambda n, generator=None: Z[:n]  # the module draws these instead of random z
    return module


def _fake():
    return Z @ StubG().A.detach() + StubG().B.detach()[LABELS]


@pytest.mark.parametrize("loss", ["nonsaturating", "hinge"])
def test_cgan_losses_by_hand(loss):
    module = _fixed_latents(ConditionalGAN(StubG(), StubProjectionD(), loss=loss))
    d = StubProjectionD()
    r = REAL @ d.w.detach() + (d.V.detach()[LABELS] * REAL).sum(1)
    f = _fake() @ d.w.detach() + (d.V.detach()[LABELS] * _fake()).sum(1)
    if loss == "nonsaturating":
        d_loss = (F.binary_cross_entropy_with_logits(r, torch.ones(4))
                  + F.binary_cross_entropy_with_logits(f, torch.zeros(4)))
        g_loss = F.binary_cross_entropy_with_logits(f, torch.ones(4))
    else:
        d_loss, g_loss = F.relu(1 - r).mean() + F.relu(1 + f).mean(), -f.mean()
    d_out, g_out = module.discriminator_loss(BATCH, 1.0), module.generator_loss(BATCH)
    torch.testing.assert_close(d_out["loss"], d_loss)
    torch.testing.assert_close(d_out["D/real"], r.mean())
    torch.testing.assert_close(d_out["D/fake"], f.mean())
    torch.testing.assert_close(g_out["loss"], g_loss)


@pytest.mark.parametrize("aux_weight", [1.0, 0.25])
def test_acgan_losses_by_hand(aux_weight):
    module = _fixed_latents(ACGAN(StubG(), StubACD(), aux_weight=aux_weight))
    d = StubACD()
    r, cr = REAL @ d.w.detach(), REAL @ d.W.detach()
    f, cf = _fake() @ d.w.detach(), _fake() @ d.W.detach()
    d_class = F.cross_entropy(cr, LABELS) + F.cross_entropy(cf, LABELS)  # real AND fake images
    d_adv = F.binary_cross_entropy_with_logits(r, torch.ones(4)) + F.binary_cross_entropy_with_logits(f, torch.zeros(4))
    g_class = F.cross_entropy(cf, LABELS)
    g_adv = F.binary_cross_entropy_with_logits(f, torch.ones(4))

    d_out = module.discriminator_loss(BATCH, 1.0)
    torch.testing.assert_close(d_out["loss"], d_adv + aux_weight * d_class)
    torch.testing.assert_close(d_out["loss/D/class"], d_class)
    torch.testing.assert_close(d_out["D/real"], r.mean())
    torch.testing.assert_close(d_out["D/fake"], f.mean())
    torch.testing.assert_close(d_out["D/accuracy/real"], (cr.argmax(1) == LABELS).float().mean())
    d_out["loss"].backward()  # the fakes are detached in D's step
    assert module.generator.A.grad is None and module.discriminator.W.grad is not None

    g_out = module.generator_loss(BATCH)
    torch.testing.assert_close(g_out["loss"], g_adv + aux_weight * g_class)
    torch.testing.assert_close(g_out["loss/G/class"], g_class)


def test_families_reject_unconditional_or_mismatched_networks_and_unlabelled_batches():
    g = DCGANGenerator((1, 32, 32), latent_dim=8, base_channels=8)
    with pytest.raises(ValueError, match="needs a conditional generator"):
        ConditionalGAN(g, _tiny_d("concat"))
    with pytest.raises(ValueError, match="10 classes but the discriminator"):
        ACGAN(_tiny_g(), ACGANDiscriminator(num_classes=3, base_channels=8))
    with pytest.raises(KeyError, match="no 'label'"):
        ConditionalGAN(StubG(), StubProjectionD()).discriminator_loss({"image": REAL}, 1.0)
    with pytest.raises(TypeError, match=r"must return \(logits \[N\], class_logits"):
        ACGAN(StubG(), StubProjectionD()).discriminator_loss(BATCH, 1.0)


# ------------------------------------------------------------------------- training, predict, grids


def _digits_module(family: str, **kw):
    torch.manual_seed(0)
    if family == "acgan":
        return ACGAN(_tiny_g(), ACGANDiscriminator(num_classes=K, base_channels=8), **kw)
    return ConditionalGAN(_tiny_g(), _tiny_d(family, **({"norm": "none", "spectral_norm": True}
                                                     if family == "projection" else {})), **kw)


@pytest.mark.parametrize("family", ["concat", "projection", "acgan"])
def test_a_few_training_steps_and_validation(family, tmp_path):
    module = _digits_module(family, max_generator_steps=3, loss="hinge" if family == "projection" else "nonsaturating")
    before = [p.detach().clone() for p in module.generator.parameters()]
    trainer = make_trainer(tmp_path, log_every_n_steps=1)
    data = digits_data()
    trainer.fit(module, datamodule=data)
    assert module.generator_steps == 3
    assert any(not torch.equal(a, b) for a, b in zip(before, module.generator.parameters(), strict=True))
    logged = trainer.callback_metrics
    assert {"loss/D", "loss/G", "D/real", "D/fake"} <= set(logged)
    if family == "acgan":
        assert {"loss/D/class", "loss/G/class", "D/accuracy/real"} <= set(logged)
    metrics = make_trainer(tmp_path, limit_val_batches=1).validate(module, datamodule=data, verbose=False)[0]
    assert {"val/D/real", "val/D/fake"} <= set(metrics)
    assert ("val/D/accuracy/real" in metrics) == (family == "acgan")


def test_predict_writes_class_folders_that_image_folder_reads_back(tmp_path):
    module = _digits_module("acgan")
    out = tmp_path / "generated"
    data = DigitsDataModule(image_size=32, batch_size=10, predict_samples=25)
    trainer = make_trainer(tmp_path, callbacks=[ImageWriter(str(out))])
    predictions = trainer.predict(module, datamodule=data)
    images = torch.cat([p["image"] for p in predictions])
    labels = torch.cat([p["label"] for p in predictions])
    assert torch.equal(labels, torch.arange(25) % K)
    for index in range(25):
        assert (out / str(index % K) / f"{index:06d}.png").is_file()

    folder = ImageFolderDataModule(root=str(out), image_size=32, channels=1, labels=True, batch_size=1)
    folder.setup("fit")
    assert folder.num_classes == K and folder.class_names == [str(k) for k in range(K)]
    dataset = folder.train_set
    assert len(dataset) == 25
    for i in range(len(dataset)):
        index = int(dataset.files[i].rsplit("/", 1)[1].split(".")[0])
        item = dataset[i]
        assert int(item["label"]) == index % K == int(labels[index])
        # PNG round trip: exactly the 8-bit quantisation of the generated image
        torch.testing.assert_close(item["image"], to_uint8(images[index : index + 1])[0].float() / 127.5 - 1,
                                   atol=1e-6, rtol=0)


class PaintByLabel(nn.Module):
    """A generator whose image is filled with a grey level that encodes the label."""

    latent_dim, sample_shape, num_classes = 2, (1, 8, 8), K

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, z, labels):
        return (labels.float() / (K - 1) * 2 - 1)[:, None, None, None].expand(len(z), 1, 8, 8)


@pytest.mark.parametrize("num_fixed", [30, 34, 64])  # 64 (the default) is not a multiple of 10
def test_sample_grid_has_one_row_per_class(num_fixed):
    module = ConditionalGAN(PaintByLabel(), nn.Linear(1, 1), num_fixed_samples=num_fixed)
    per_row = num_fixed // K
    picture = SampleGrid().render(None, module)  # 10 rows of per_row tiles, 8 px tiles with 2 px padding
    assert picture.shape == (3, 10 * 10 + 2, per_row * 10 + 2)
    for row in range(K):
        level = to_uint8(torch.tensor([[[[row / (K - 1) * 2 - 1]]]])).item()
        for col in range(per_row):
            tile = picture[:, 2 + 10 * row : 10 + 10 * row, 2 + 10 * col : 10 + 10 * col]
            assert (tile == level).all(), (row, col)


def test_class_folder_names_sort_in_label_order():
    for num_classes in (2, 10, 12, 100, 1000):
        names = [ImageWriter.class_folder(k, num_classes) for k in range(num_classes)]
        assert sorted(names) == names and len(set(names)) == num_classes
    assert ImageWriter.class_folder(7, 10) == "7" and ImageWriter.class_folder(7, 12) == "07"
