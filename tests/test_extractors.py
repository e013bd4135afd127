"""FID Inception-v3 and digits classifier: interface, weights format, preprocessing, accuracy, split."""

from __future__ import annotations

import hashlib
import importlib.util
import warnings

import pytest
import torch
import torch.nn.functional as F
import torchvision

import callbacks.metrics.digits_classifier as dc
from callbacks.metrics.digits_classifier import DigitsClassifier, load_digits_split, train_digits_classifier
from callbacks.metrics.inception import WEIGHTS_FILENAME, FIDInceptionV3, resize_tf1


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory):
    return FIDInceptionV3.save_random_weights(tmp_path_factory.mktemp("inception") / WEIGHTS_FILENAME, seed=0)


@pytest.fixture(scope="module")
def inception(inception_weights):
    return FIDInceptionV3(weights_path=str(inception_weights))


def _frozen(module: torch.nn.Module) -> bool:
    return not module.training and not any(p.requires_grad for p in module.parameters())


def test_inception_end_to_end_rgb_and_gray(inception, inception_weights):
    digest = hashlib.sha256(inception_weights.read_bytes()).hexdigest()
    assert inception.cache_id == f"inception2015-tf1-{digest[:12]}" and inception.preprocessing == "tf1"
    assert (inception.feature_dim, inception.num_classes) == (2048, 1008)
    assert _frozen(inception) and _frozen(inception.train())
    torch.manual_seed(0)
    for shape in ((4, 3, 64, 64), (4, 1, 32, 32)):
        out = inception(torch.rand(shape) * 2 - 1)
        assert out["features"].shape == (4, 2048) and out["logits"].shape == (4, 1008)
        assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in out.values())
        assert out["features"].std() > 0
        # Unbiased logits: pool3 @ W.T without the bias, as the reference IS code uses them.
        torch.testing.assert_close(out["logits"], out["features"] @ inception.fc.weight.T)


def test_inception_imagenet_logits_mode(inception_weights):
    model = FIDInceptionV3(weights_path=str(inception_weights), logits="imagenet")
    assert model.num_classes == 1000 and model.cache_id.startswith("inception2015-tf1-imagenet-")
    out = model(torch.zeros(1, 1, 16, 16))
    assert out["logits"].shape == (1, 1000)
    torch.testing.assert_close(out["logits"], model.fc(out["features"])[:, 1:1001])


def test_random_weights_have_the_pytorch_fid_format(inception_weights):
    state = torch.load(inception_weights, weights_only=True)
    # pytorch-fid loads its file strictly into exactly this torchvision network.
    reference = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False,
                                                num_classes=1008).state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == {k: tuple(v.shape) for k, v in reference.items()}
    model = FIDInceptionV3.__new__(FIDInceptionV3)
    torch.nn.Module.__init__(model)
    model._build()
    model.load_state_dict(state, strict=True)
    # Old/wrapped layouts are mapped: "module." prefixes, AuxLogits, missing BatchNorm counters.
    legacy = {f"module.{k}": v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    legacy["AuxLogits.fc.weight"] = torch.zeros(1)
    model.load_state_dict(model._map_keys(legacy), strict=True)


def test_missing_weights_name_the_file_and_the_option(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=rf"{WEIGHTS_FILENAME}.*weights_path") as info:
        FIDInceptionV3(weights_path=str(tmp_path / "nowhere.pth"))
    assert "nowhere.pth" in str(info.value)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with pytest.raises(FileNotFoundError, match="weights_path") as info:
        FIDInceptionV3()
    assert str(tmp_path / "torch_home" / "hub" / "checkpoints" / WEIGHTS_FILENAME) in str(info.value)


def test_preprocessing_modes_resize_and_scale_as_their_tools(inception_weights):
    torch.manual_seed(0)
    levels = torch.randint(0, 256, (1, 3, 23, 41)).float()  # upsampling, non-square
    ramp = torch.arange(400.0).remainder(2).mul(255)  # 1-px stripes: downsampling, maximal aliasing
    checker = (ramp[:, None] + ramp[None, :]).remainder(510).expand(1, 3, 400, 400)
    modes = {"tf1": lambda u: (resize_tf1(u, 299) - 128) / 128,
             "pytorch_fid": lambda u: 2 * F.interpolate(u / 255, size=(299, 299), mode="bilinear", align_corners=False) - 1,
             "torchmetrics": lambda u: (F.interpolate(u, size=(299, 299), mode="bilinear", align_corners=False,
                                                      antialias=True) - 128) / 128}
    for mode, expected in modes.items():
        model = FIDInceptionV3(weights_path=str(inception_weights), resize=mode)
        assert model.preprocessing == mode and mode in model.cache_id
        for quantised in (levels, checker):
            torch.testing.assert_close(model.preprocess(quantised / 127.5 - 1), expected(quantised), rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="resize must be one of"):
        FIDInceptionV3(weights_path=str(inception_weights), resize="bilinear")


@pytest.mark.skipif(importlib.util.find_spec("torch_fidelity") is None, reason="the dev extra's torch-fidelity")
def test_features_equal_the_reference_tools_on_the_same_weights(inception_weights, monkeypatch):
    """torch-fidelity (tf1), pytorch-fid (pytorch_fid) and torchmetrics (torchmetrics) on one weights file."""
    import pytorch_fid.inception
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    from torchmetrics.image.fid import NoTrainInceptionV3

    images = torch.randint(0, 256, (1, 3, 48, 40), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    x = images.float() / 127.5 - 1  # exact: quantising gives back the same uint8 values
    state = torch.load(inception_weights, weights_only=True)
    monkeypatch.setattr(pytorch_fid.inception, "load_state_dict_from_url", lambda *a, **k: state)
    references = {
        "tf1": FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                           feature_extractor_weights_path=str(inception_weights))(images)[0],
        "pytorch_fid": pytorch_fid.inception.InceptionV3([3]).eval()(images.float() / 255)[0].flatten(1),
        "torchmetrics": NoTrainInceptionV3("inception-v3-compat", ["2048"], str(inception_weights),
                                           antialias=True)(images),  # a tensor, not a tuple
    }
    for mode, reference in references.items():
        ours = FIDInceptionV3(weights_path=str(inception_weights), resize=mode)(x)["features"]
        torch.testing.assert_close(ours, reference.float(), rtol=1e-4, atol=1e-4 * float(reference.abs().max()))
    # The modes differ from each other by more than that tolerance: the test tells them apart.
    assert (references["tf1"] - references["pytorch_fid"]).abs().max() > 1e-2 * references["tf1"].abs().max()


def test_tf1_resize_has_no_half_pixel_offset():
    x = torch.tensor([[[[0.0, 10.0]]]])  # 1 x 2 -> 2 x 4
    # TF1 legacy: sample at i * 2 / 4 = 0, 0.5, 1, 1.5 (clamped): 0, 5, 10, 10 on every row.
    torch.testing.assert_close(resize_tf1(x, 4)[0, 0, :, :], torch.tensor([[0.0, 5.0, 10.0, 10.0]] * 4))
    assert not torch.allclose(resize_tf1(x, 4), F.interpolate(x, size=(4, 4), mode="bilinear", align_corners=False))
    y = torch.rand(2, 3, 7, 7)
    torch.testing.assert_close(resize_tf1(y, 7), y)


def test_quantisation_makes_tiny_perturbations_invisible(inception):
    torch.manual_seed(1)
    x = torch.randint(0, 256, (1, 3, 12, 12)).float() / 127.5 - 1  # exactly on the uint8 grid
    assert torch.equal(inception.preprocess(x), inception.preprocess(x + 1e-4))
    out = inception(torch.cat([x, x + 1e-4]))
    assert torch.equal(out["features"][0], out["features"][1])


@pytest.fixture(scope="module")
def digits():
    return DigitsClassifier()


def test_packaged_digits_classifier_is_accurate_on_val(digits):
    assert dc.PACKAGED_WEIGHTS.stat().st_size < 1_000_000
    assert digits.weights_path == str(dc.PACKAGED_WEIGHTS)
    digest = hashlib.sha256(dc.PACKAGED_WEIGHTS.read_bytes()).hexdigest()
    assert digits.cache_id == f"digits-cnn-{digest[:12]}" and _frozen(digits) and _frozen(digits.train())
    images, labels = load_digits_split("val")
    out = digits(images)
    assert out["features"].shape == (359, digits.feature_dim) == (359, 128)
    assert out["logits"].shape == (359, digits.num_classes) == (359, 10)
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in out.values())
    assert (out["logits"].argmax(1) == labels).float().mean() >= 0.97


def test_digits_classifier_other_sizes_and_rgb(digits):
    images, labels = load_digits_split("val")
    big = F.interpolate(images, size=(64, 64), mode="bilinear", align_corners=False)
    out = digits(big)
    assert out["features"].shape == (359, 128) and out["logits"].shape == (359, 10)
    assert (out["logits"].argmax(1) == labels).float().mean() >= 0.95
    torch.testing.assert_close(digits(images.expand(-1, 3, -1, -1))["features"], digits(images)["features"])
    with pytest.raises(ValueError, match="images must be"):
        digits(torch.zeros(2, 2, 32, 32))


def test_digits_split_is_the_datamodules_split():
    from datamodules.digits import DigitsDataModule

    dm = DigitsDataModule(image_size=32)
    for split in ("train", "val"):
        images, labels = load_digits_split(split)
        dm_images, dm_labels = dm.tensors(split)
        assert torch.equal(images, dm_images) and torch.equal(labels, dm_labels)


def test_train_digits_classifier_writes_loadable_weights(tmp_path, digits):
    result = train_digits_classifier(tmp_path / "d.pt", epochs=1, seed=0)
    assert set(result) >= {"val_accuracy", "train_accuracy", "seconds", "path"} and 0 <= result["val_accuracy"] <= 1
    model = DigitsClassifier(weights_path=str(tmp_path / "d.pt"))
    assert model.cache_id.startswith("digits-cnn-") and model.cache_id != digits.cache_id
    state = torch.load(tmp_path / "d.pt", weights_only=True)
    assert all(v.dtype in (torch.float32, torch.int64) for v in state.values())
    with pytest.raises(ValueError, match="trained at 32 px"):
        DigitsClassifier(weights_path=str(tmp_path / "d.pt"), image_size=64)
    with pytest.raises(FileNotFoundError, match="weights_path"):
        DigitsClassifier(weights_path=str(tmp_path / "missing.pt"))


def test_digits_classifier_trains_into_the_cache_when_not_packaged(tmp_path, monkeypatch):
    packaged = dc.PACKAGED_WEIGHTS.read_bytes()
    trained = []

    def fake_training(path, image_size):  # the real training is tested above; this tests the fallback
        trained.append(image_size)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(packaged)

    monkeypatch.setattr(dc, "PACKAGED_WEIGHTS", tmp_path / "absent.pt")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(dc, "train_digits_classifier", fake_training)
    with pytest.warns(UserWarning, match="training them once"):
        model = DigitsClassifier()
    assert model.weights_path == str(tmp_path / "cache" / "gan_modules" / "digits_classifier.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # cached now: no second training, no warning
        assert DigitsClassifier().cache_id == model.cache_id
    assert trained == [32]
