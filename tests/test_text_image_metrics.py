"""Text-to-image scores: R-precision and attribute accuracy by hand, the callback in a fit, the evaluators."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import make_trainer

from callbacks import TextImageMetrics
from callbacks.metrics import AttributeClassifier, attribute_accuracy, r_precision
from callbacks.metrics.text_image import attribute_groups
from datamodules.shapes_captions import make_split
from datamodules.text_image import TextImageDataModule
from gan_modules import StackGAN
from gan_modules.nets.stackgan import StackGANDiscriminator, StackGANStage1Generator
from gan_modules.nets.text import load_text_image_encoders


def test_r_precision_by_hand():
    # three images, two captions ranked each: image i is closest to caption i except image 2 (closest to 0)
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    image = torch.tensor([[1.0, 0.1], [0.1, 1.0], [0.9, -0.2]])
    # with 2 candidates every image meets its own caption and one other; image 2's own (cos < 0) loses to both
    assert r_precision(image, text, candidates=2) == pytest.approx(2 / 3)
    assert r_precision(text, text, candidates=3) == 1.0
    # groups: captions of the same group are never the other candidates, so image 2 can only meet captions 0, 1
    assert r_precision(image, text, candidates=2, groups=torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="fewer than candidates - 1"):
        r_precision(image, text, candidates=3, groups=torch.tensor([0, 1, 1]))


def test_attribute_accuracy_and_groups_by_hand():
    logits = {"colour": torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]]), "size": torch.tensor([[0.0, 1.0]] * 3)}
    attributes = torch.tensor([[0, 1], [0, 1], [0, 0]])
    assert attribute_accuracy(logits, attributes) == {"colour": pytest.approx(2 / 3), "size": pytest.approx(2 / 3)}
    assert attribute_groups(attributes).tolist() == [1, 1, 0]
    with pytest.raises(ValueError, match=r"attributes must be \[N, 2\]"):
        attribute_accuracy(logits, attributes[:, :1])


def test_packaged_evaluators_read_the_real_images():
    images, attributes, captions = make_split("heldout")
    x = images[:100].float() / 127.5 - 1
    out = AttributeClassifier()(x)
    assert out["features"].shape == (100, 128) and out["logits"].shape == (100, 17)
    accuracy = attribute_accuracy(out["attributes"], attributes[:100])
    assert min(accuracy.values()) > 0.9  # pairs the classifier never saw in training
    vocabulary, text, image, max_length = load_text_image_encoders()
    tokens = vocabulary.encode_batch([c[0] for c in captions[:100]], max_length)[0]
    assert r_precision(image(x), text(tokens), candidates=10, groups=attribute_groups(attributes[:100])) > 0.8


def test_callback_scores_during_fit(tmp_path):
    torch.manual_seed(0)
    g = StackGANStage1Generator(resolution=16, noise_dim=8, cond_dim=8, base_channels=8)
    model = StackGAN(g, StackGANDiscriminator(resolution=16, cond_dim=8, base_channels=8), max_generator_steps=2,
                     num_fixed_samples=4)
    metrics = TextImageMetrics(num_samples=120, every_n_generator_steps=1, kid_subsets=3, kid_subset_size=50)
    trainer = make_trainer(tmp_path, callbacks=[metrics])
    trainer.fit(model, TextImageDataModule(batch_size=4))
    keys = {f"metrics/val/{k}" for k in ("attr/colour", "attr/shape", "attr/size", "attr/position", "attr/mean",
                                         "fid", "kid", "kid_std", "r_precision")}
    assert set(metrics.last) == keys
    assert all(0 <= metrics.last[f"metrics/val/attr/{k}"] <= 1 for k in ("colour", "shape", "size", "position"))
    assert metrics.last["metrics/val/fid"] > 0
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["generator_steps"] for line in lines] == [1, 2]
    again = metrics.compute(trainer, model)  # cached for the step
    assert again is metrics.last


def test_callback_bad_arguments():
    with pytest.raises(ValueError, match="unknown metric"):
        TextImageMetrics(metrics=["colourfulness"])
    with pytest.raises(ValueError, match="num_samples must be >= 100"):
        TextImageMetrics(num_samples=50)


def test_kid_subset_larger_than_the_scored_pairs_is_refused_at_construction():
    # found in the StackGAN presets: 500 scored pairs, the default subset of 1000 failed at the end of fit
    with pytest.raises(ValueError, match="kid_subset_size=1000 is larger than num_samples=500"):
        TextImageMetrics(num_samples=500, metrics=["kid"])
    assert TextImageMetrics(num_samples=500, metrics=["attributes"]).num_samples == 500  # KID not asked for
