"""The high-frequency energy metric (callbacks/metrics/spectrum.py) and its place in GenerativeMetrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import make_trainer

import evaluate
from callbacks import GenerativeMetrics
from callbacks.images import save_png
from callbacks.metrics.spectrum import (
    SpectrumAccumulator,
    high_frequency_share,
    power_spectrum_sum,
    radial_frequency,
)
from callbacks.metrics.streaming import SetSummary
from datamodules import DigitsDataModule
from gan_modules import GAN
from gan_modules.nets import DCGANDiscriminator, DCGANGenerator


def _grid(h: int = 8, w: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return y, x


def test_hand_computed_shares():
    y, x = _grid()
    nyquist = ((-1.0) ** (x + y))[None, None]  # all power at (f_y, f_x) = (1/2, 1/2): r = sqrt(2)
    assert high_frequency_share(nyquist) == pytest.approx(1.0, abs=1e-12)
    assert high_frequency_share(torch.full((1, 1, 8, 8), 0.7)) == 0.0  # all power at DC
    # 1 + (-1)^x: DC and (0, 1/2) (r = 1) each carry |FFT|^2 = 64^2
    assert high_frequency_share((1 + (-1.0) ** x)[None, None]) == pytest.approx(0.5, abs=1e-12)
    # cos(2 pi x / 4): r = 1/2 is below the default cutoff 3/4, above a cutoff of 0.4
    wave = torch.cos(2 * math.pi * x / 4)[None, None]
    assert high_frequency_share(wave) == pytest.approx(0.0, abs=1e-12)
    assert high_frequency_share(wave, cutoff=0.4) == pytest.approx(1.0, abs=1e-12)


def test_radial_frequency_and_parseval_against_numpy():
    r = radial_frequency(4, 6)
    fy, fx = np.fft.fftfreq(4), np.fft.fftfreq(6)
    np.testing.assert_allclose(r.numpy(), np.hypot(fy[:, None], fx[None, :]) * 2)
    images = torch.randn(3, 2, 4, 6)
    spectrum = power_spectrum_sum(images)
    expected = (np.abs(np.fft.fft2(images.double().numpy())) ** 2).sum(axis=(0, 1))
    np.testing.assert_allclose(spectrum.numpy(), expected, rtol=1e-12)
    assert float(spectrum.sum()) == pytest.approx(4 * 6 * float(images.double().square().sum()), rel=1e-12)


def test_checkerboard_image_has_more_high_frequency_energy_than_a_smooth_one():
    y, x = _grid(32, 32)
    smooth = torch.exp(-((x - 16.0) ** 2 + (y - 16.0) ** 2) / 50.0)[None, None] * 2 - 1  # a blob
    checker = (smooth + 0.2 * (-1.0) ** (x + y)).clamp(-1, 1)  # the same blob with a checkerboard on top
    assert high_frequency_share(checker) > 10 * high_frequency_share(smooth)


def test_streaming_over_batches_equals_one_pass_and_sums_combine():
    images = torch.rand(10, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    one = SpectrumAccumulator(cutoff=0.5)
    one.update(images)
    streamed = SpectrumAccumulator(cutoff=0.5)
    for chunk in images.split(3):
        streamed.update(chunk)
    assert streamed.share() == pytest.approx(one.share(), rel=1e-12)
    assert float(streamed.count) == 10
    # two "processes" with half the images each, summed: the same state
    a, b = SpectrumAccumulator(cutoff=0.5), SpectrumAccumulator(cutoff=0.5)
    a.update(images[:4])
    b.update(images[4:])
    for mine, theirs in zip(a.tensors(), b.tensors(), strict=True):
        mine += theirs
    assert a.share() == pytest.approx(one.share(), rel=1e-12)
    summary = SetSummary(10, ["hf_energy"])
    assert not summary.needs_features
    for index in torch.arange(10).split(4):
        summary.update(index, images=images[index])
    assert summary.spectrum.cutoff == 0.75
    assert summary.spectrum.share() == pytest.approx(high_frequency_share(images), rel=1e-12)


def test_bad_cutoff_and_inputs_are_explained():
    with pytest.raises(ValueError, match="cutoff"):
        SpectrumAccumulator(cutoff=1.5)
    with pytest.raises(ValueError, match="hf_cutoff"):
        GenerativeMetrics(metrics=["hf_energy"], hf_cutoff=-0.1)
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        power_spectrum_sum(torch.zeros(4, 2))


def test_generative_metrics_reports_generated_real_and_ratio_without_an_extractor(tmp_path):
    torch.manual_seed(0)
    model = GAN(DCGANGenerator((1, 32, 32), latent_dim=8, base_channels=4),
                DCGANDiscriminator((1, 32, 32), base_channels=4), max_generator_steps=1)
    data = DigitsDataModule(batch_size=16)
    metrics = GenerativeMetrics(metrics=["hf_energy"], num_samples=40, batch_size=16, num_real=100, num_workers=0,
                                cache_dir=str(tmp_path / "cache"))
    make_trainer(tmp_path, callbacks=[metrics], limit_val_batches=1).validate(model, data)
    values = metrics.last
    real, _ = data.tensors("train")
    order = torch.randperm(len(real), generator=torch.Generator().manual_seed(0))[:100]
    assert values["metrics/hf_energy_real"] == pytest.approx(high_frequency_share(real[order]), rel=1e-9)
    assert values["metrics/hf_energy"] == pytest.approx(values["metrics/hf_energy_fake"] / values["metrics/hf_energy_real"])
    assert 0 < values["metrics/hf_energy_fake"] < 1


def test_evaluate_py_reports_hf_energy_of_a_folder(tmp_path):
    y, x = _grid(32, 32)
    checker = (((x + y) % 2) * 255).to(torch.uint8)[None]  # the Nyquist pattern: share 1 once read in [-1, 1]
    for i in range(4):
        save_png(checker, tmp_path / "fake" / f"{i}.png")
    values = evaluate.main(["--fake", str(tmp_path / "fake"), "--real", "digits", "--num_real", "50",
                            "--metrics", "hf_energy", "--num_workers", "0", "--no_progress"])
    assert values["hf_energy_fake"] == pytest.approx(1.0, abs=1e-9)
    assert 0 < values["hf_energy_real"] < 0.5
    assert values["hf_energy"] == pytest.approx(1.0 / values["hf_energy_real"])
    with pytest.raises(SystemExit):  # the real share needs real images
        evaluate.main(["--fake", str(tmp_path / "fake"), "--metrics", "hf_energy"])
