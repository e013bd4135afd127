"""GenerativeMetrics at scale: bounded memory, reference statistics, translation families; evaluate.py streaming."""

from __future__ import annotations

import ctypes
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from conftest import make_trainer
from presets import ROOT, data_overrides, fit_in_process
from torch import nn

import evaluate
from callbacks import GenerativeMetrics
from callbacks.images import save_png, to_uint8
from callbacks.metrics import DigitsClassifier, frechet_distance
from callbacks.metrics.reference_stats import save_reference_statistics
from datamodules import EmbeddedPairedDataModule, EmbeddedUnpairedDataModule
from gan_modules import GAN, CycleGAN, Pix2Pix
from gan_modules.nets import (
    MLPDiscriminator,
    MLPGenerator,
    PatchDiscriminator,
    ResnetGenerator,
    UNetGenerator,
)


class PoolFeatures(nn.Module):
    """A tiny extractor: 4x4 average pools as features ``[N, 3 * 16]``, a fixed projection as 10 logits."""

    cache_id = "pool4-test"
    feature_dim = 48

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.head = nn.Linear(48, 10)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = F.adaptive_avg_pool2d(images.float(), 4).flatten(1)
        return {"features": features, "logits": self.head(features)}


def _proc_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _peak_growth_kib(fn) -> int:
    """Peak resident memory above the starting point while ``fn`` runs (Linux: the peak is reset first)."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # freed heap back to the OS, so the start is live memory
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    start = _proc_kib("VmRSS")
    fn()
    return _proc_kib("VmHWM") - start


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS reset needs Linux /proc")
def test_fid_memory_does_not_grow_with_num_samples(tmp_path):
    """FID-only at 3x128x128: keeping the samples (as before streaming) would need 0.2 GB at 1k, 1.6 GB at 8k."""
    torch.manual_seed(0)
    model = GAN(MLPGenerator((3, 128, 128), latent_dim=4, hidden_dim=8, num_layers=2),
                MLPDiscriminator((3, 128, 128), hidden_dim=8, num_layers=2))
    stats = save_reference_statistics(tmp_path / "ref.npz", torch.zeros(48), torch.eye(48))
    trainer = SimpleNamespace(world_size=1, global_rank=0, is_global_zero=True, log_dir=str(tmp_path),
                              default_root_dir=str(tmp_path), datamodule=None)

    def run(n: int) -> None:
        metrics = GenerativeMetrics(PoolFeatures(), metrics=["fid"], num_samples=n, batch_size=50,
                                    reference_stats=str(stats), cache_dir=str(tmp_path / "cache"))
        metrics.compute(trainer, model, force=True)
        assert np.isfinite(metrics.last["metrics/fid"])

    run(1000)  # warm-up: allocator pools, lazy imports
    # batches of 50 (10 MB of samples): a peak may hold one batch more than another, whatever n is, and one
    # batch stays inside the slack; the lower of two peaks each
    small = min(_peak_growth_kib(lambda: run(1000)) for _ in range(2))
    large = min(_peak_growth_kib(lambda: run(8000)) for _ in range(2))
    assert large < 1.1 * small + 8 * 1024, (small, large)  # KiB; 8 MiB of slack for allocator noise


def test_reference_stats_replace_the_real_split_and_give_the_fid_of_their_features(tmp_path):
    torch.manual_seed(0)
    model = GAN(MLPGenerator((3, 16, 16), latent_dim=4, hidden_dim=8, num_layers=2),
                MLPDiscriminator((3, 16, 16), hidden_dim=8, num_layers=2))
    extractor = PoolFeatures()
    reference = torch.rand(300, 3, 16, 16) * 2 - 1
    features = extractor(reference)["features"].double()
    stats = save_reference_statistics(tmp_path / "ref.npz", features.mean(0), torch.cov(features.T), 300, None)
    trainer = SimpleNamespace(world_size=1, global_rank=0, is_global_zero=True, log_dir=str(tmp_path),
                              default_root_dir=str(tmp_path), datamodule=None)
    metrics = GenerativeMetrics(extractor, metrics=["fid", "is"], num_samples=130, batch_size=50,
                                reference_stats=str(stats))
    values = metrics.compute(trainer, model)
    # the same samples, all at once: batch b's latents come from a generator seeded with (seed, b)
    fakes = torch.cat([model.sample(len(index), generator=torch.Generator().manual_seed(b))
                       for b, index in enumerate(torch.arange(130).split(50))])
    expected = frechet_distance(extractor(fakes)["features"], features)
    assert values["metrics/fid"] == pytest.approx(expected, rel=1e-9)
    bad = tmp_path / "bad.npz"
    np.savez(bad, mu=np.zeros(48))
    with pytest.raises(ValueError, match=r"bad\.npz' has no sigma"):
        GenerativeMetrics(extractor, metrics=["fid"], num_samples=10, reference_stats=str(bad)).compute(trainer, model)
    np.savez(bad, mu=np.zeros(7), sigma=np.eye(7))
    with pytest.raises(ValueError, match=r"bad\.npz' holds 7-dimensional features but the extractor makes 48"):
        GenerativeMetrics(extractor, metrics=["fid"], num_samples=10, reference_stats=str(bad)).compute(trainer, model)
    with pytest.raises(FileNotFoundError, match=r"reference_stats file '.*nowhere\.npz' does not exist"):
        GenerativeMetrics(extractor, metrics=["fid"], reference_stats=str(tmp_path / "nowhere.npz"))


def _expected_translation_fid(model, dataset, extractor, n: int, batch_size: int, seed: int) -> dict[str, float]:
    """FID per direction from the full feature matrices of the same (translation, target) pairs."""
    feats: dict[str, tuple[list, list]] = {}
    for b, index in enumerate(torch.arange(n).split(batch_size)):
        items = [dataset[int(i)] for i in index]
        batch = {k: torch.stack([item[k] for item in items]) for k in items[0]}
        for direction, (fake, real) in model.metric_pairs(batch, seed=seed * 1_000_003 + b).items():
            fake_list, real_list = feats.setdefault(direction, ([], []))
            fake_list.append(extractor(fake)["features"])
            real_list.append(extractor(real)["features"])
    return {d: frechet_distance(torch.cat(r), torch.cat(f)) for d, (f, r) in feats.items()}


@pytest.mark.parametrize("family", ["pix2pix", "cyclegan"])
def test_translation_families_are_scored_on_their_test_split(tmp_path, family):
    torch.manual_seed(0)
    if family == "pix2pix":
        model = Pix2Pix(UNetGenerator((3, 16, 16), (1, 16, 16), base_channels=4, dropout=0.5, norm="instance"),
                        PatchDiscriminator((3, 16, 16), (1, 16, 16), conditional=True, base_channels=4, n_layers=1))
        data = EmbeddedPairedDataModule("gray2color", patch_size=16, patches_per_epoch=8, val_patches=21, batch_size=4)
    else:
        model = CycleGAN(ResnetGenerator((3, 16, 16), base_channels=4, n_blocks=1),
                         PatchDiscriminator((3, 16, 16), base_channels=4, n_layers=1, norm="instance"))
        data = EmbeddedUnpairedDataModule("photo2transformed", patch_size=16, patches_per_epoch=8, val_patches=21,
                                          batch_size=4)
    extractor = DigitsClassifier()
    metrics = GenerativeMetrics(extractor, metrics=["fid", "kid", "precision"], num_samples=1000, batch_size=8,
                                kid_subsets=3, kid_subset_size=10, num_workers=0)
    make_trainer(tmp_path, callbacks=[metrics], limit_val_batches=1).validate(model, data)
    directions = [""] if family == "pix2pix" else ["", "B2A"]
    keys = {f"metrics/{d + '/' if d else ''}{m}" for d in directions for m in ("fid", "kid", "kid_std", "precision")}
    assert set(metrics.last) == keys
    record = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert keys <= set(record)
    data.setup("test")
    expected = _expected_translation_fid(model, data.test_set, extractor, 21, 8, seed=0)
    for direction in directions:
        key = f"metrics/{direction + '/' if direction else ''}fid"
        assert metrics.last[key] == pytest.approx(expected[direction], rel=1e-9), key


@pytest.mark.parametrize("name", ["pix2pix_facades", "cyclegan_horse2zebra"])
def test_translation_presets_log_fid_and_kid_on_their_test_split(tmp_path, name):
    """The preset's own metric settings on the stand-in data; the digits CNN stands in for Inception (whose
    weights are not here; the Inception path is tested in test_generative_metrics), to keep this fast."""
    config = ROOT / "configs" / f"{name}.yaml"
    callbacks = yaml.safe_load(config.read_text())["trainer"]["callbacks"]
    [spec] = [c for c in callbacks if c["class_path"] == "callbacks.GenerativeMetrics"]
    init = dict(spec["init_args"])
    extractor_spec = init.pop("extractor")
    assert extractor_spec["class_path"] == "callbacks.metrics.FIDInceptionV3" and {"fid", "kid"} <= set(init["metrics"])
    extractor = DigitsClassifier()
    init.update(kid_subset_size=3, kid_subsets=2, num_workers=0)  # the stand-in test split has 6 items
    metrics = GenerativeMetrics(extractor, **init)
    fit_in_process(config, tmp_path / "run", 1, [metrics], None, data_overrides(config, tmp_path, batch_size=2))
    directions = ["metrics/"] + (["metrics/B2A/"] if name.startswith("cyclegan") else [])
    for key in (f"{d}{m}" for d in directions for m in ("fid", "kid", "kid_std")):
        assert np.isfinite(metrics.last[key]), key


def test_translation_refuses_noise_only_metrics(tmp_path):
    model = Pix2Pix(UNetGenerator((3, 16, 16), (1, 16, 16), base_channels=4),
                    PatchDiscriminator((3, 16, 16), (1, 16, 16), conditional=True, base_channels=4, n_layers=1))
    data = EmbeddedPairedDataModule("gray2color", patch_size=16, patches_per_epoch=8, val_patches=4, batch_size=4)
    metrics = GenerativeMetrics(DigitsClassifier(), metrics=["fid", "class_histogram"], num_workers=0)
    with pytest.raises(ValueError, match=r"Pix2Pix \(a translation family\) cannot compute \['class_histogram'\]"):
        make_trainer(tmp_path, callbacks=[metrics], limit_val_batches=1).validate(model, data)


# ------------------------------------------------------------------------------------------ evaluate.py


def _write_pngs(folder: Path, count: int, seed: int, shift: float = 0.0) -> None:
    g = torch.Generator().manual_seed(seed)
    images = (torch.rand(count, 1, 12, 12, generator=g) * 2 - 1 + shift).clamp(-1, 1)
    for i, image in enumerate(to_uint8(images)):
        save_png(image, folder / f"{i:04d}.png")


def test_evaluate_streams_a_folder_and_equals_the_in_memory_scores(tmp_path, capsys):
    _write_pngs(tmp_path / "fake", 45, 0, shift=0.3)
    _write_pngs(tmp_path / "real", 60, 1)
    args = ["--fake", str(tmp_path / "fake"), "--real", str(tmp_path / "real"), "--metrics", "fid", "kid", "is",
            "density", "--batch_size", "8", "--num_workers", "0", "--kid_subset_size", "20", "--num_fake", "40",
            "--max_features", "30", "--no_progress", "--save_real_stats", str(tmp_path / "real.npz")]
    values = evaluate.main(args)
    extractor = DigitsClassifier()
    load = [evaluate.ImageFiles(evaluate.folder_files(str(tmp_path / n), k, "--x", "--num_x"), 1, 32)
            for n, k in (("fake", 40), ("real", None))]
    fake, real = (torch.stack([ds[i]["image"] for i in range(len(ds))]) for ds in load)
    out_fake, out_real = extractor(fake), extractor(real)
    assert values["fid"] == pytest.approx(frechet_distance(out_real["features"], out_fake["features"]), rel=1e-9)
    expected = evaluate.score(out_real["features"][:30], out_fake["features"][:30], out_fake["logits"],
                              ["kid", "density"], kid_subset_size=20)
    assert values["kid"] == pytest.approx(expected["kid"], rel=1e-12)
    assert values["density"] == expected["density"]
    assert "| fid |" in capsys.readouterr().out
    # the saved real statistics, used as the reference, give the same FID
    again = evaluate.main(["--fake", str(tmp_path / "fake"), "--reference_stats", str(tmp_path / "real.npz"),
                           "--metrics", "fid", "--num_fake", "40", "--num_workers", "0", "--no_progress"])
    assert again["fid"] == pytest.approx(values["fid"], rel=1e-9)


def test_evaluate_bad_input_names_the_culprit(tmp_path, capsys):
    _write_pngs(tmp_path / "fake", 5, 0)
    (tmp_path / "empty").mkdir()
    cases = [
        (["--fake", str(tmp_path / "empty"), "--real", "digits"], r"--fake: no images .* under '.*empty'"),
        (["--fake", str(tmp_path / "fake"), "--real", "digits", "--num_fake", "9"],
         r"--num_fake=9 but --fake '.*fake' holds only 5 images"),
        (["--fake", str(tmp_path / "nowhere"), "--real", "digits"], r"--fake: folder '.*nowhere' does not exist"),
        (["--fake", str(tmp_path / "fake")], r"give --real .* or --reference_stats"),
    ]
    np.savez(tmp_path / "bad.npz", sigma=np.eye(128))
    cases.append((["--fake", str(tmp_path / "fake"), "--reference_stats", str(tmp_path / "bad.npz"), "--metrics", "fid"],
                  r"--reference_stats: reference statistics file '.*bad\.npz' has no mu"))
    for argv, message in cases:
        with pytest.raises(SystemExit):
            evaluate.main([*argv, "--no_progress", "--num_workers", "0"])
        err = capsys.readouterr().err
        assert re.search(message, err), (message, err[-500:])


def test_evaluate_says_when_kid_is_capped(tmp_path, capsys):
    _write_pngs(tmp_path / "fake", 30, 0)
    with pytest.warns(UserWarning, match="ONE MMD"):
        values = evaluate.main(["--fake", str(tmp_path / "fake"), "--real", "digits:val", "--metrics", "kid",
                                "--num_workers", "0", "--no_progress"])
    assert values["kid_subset_size"] == 30 and "kid_std" not in values
    assert "KID: subset size capped at 30" in capsys.readouterr().out
