"""GenerativeMetrics and evaluate.py: DDP equals one process, real < trained < noise, caching, Inception path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import torch
from conftest import make_trainer, toy_data, toy_gan

import evaluate
import train
from callbacks import GenerativeMetrics
from callbacks.images import save_png, to_uint8
from callbacks.metrics import DigitsClassifier, FIDInceptionV3, frechet_distance
from datamodules import DigitsDataModule
from gan_modules import GAN
from gan_modules.nets import DCGANDiscriminator, DCGANGenerator

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def classifier():
    return DigitsClassifier()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small DCGAN trained for 300 generator steps on the digits (about 20 s on 2 cores; after 150
    its FID is still above uniform noise's)."""
    torch.manual_seed(0)
    model = GAN(DCGANGenerator((1, 32, 32), latent_dim=32, base_channels=16),
                DCGANDiscriminator((1, 32, 32), base_channels=16), max_generator_steps=300, ema_decay=0.99)
    data = DigitsDataModule(batch_size=64)
    make_trainer(tmp_path_factory.mktemp("trained")).fit(model, data)
    return model, data


def test_metrics_order_real_trained_noise(classifier, trained):
    model, data = trained
    real_train, _ = data.tensors("train")
    real_val, _ = data.tensors("val")
    n = len(real_val)
    fake = model.sample(n, generator=torch.Generator().manual_seed(0))
    noise = torch.rand(n, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    feats = {name: classifier(x)["features"] for name, x in
             [("train", real_train), ("val", real_val), ("fake", fake), ("noise", noise)]}
    fid = {name: frechet_distance(feats["train"], feats[name]) for name in ("val", "fake", "noise")}
    assert fid["val"] < fid["fake"] < fid["noise"], fid
    scores = {name: evaluate.score(feats["train"], feats[name], classifier(x)["logits"], ["kid", "is"])
              for name, x in [("val", real_val), ("fake", fake), ("noise", noise)]}
    assert scores["val"]["kid"] < scores["fake"]["kid"] < scores["noise"]["kid"], scores
    assert scores["val"]["is"] > scores["fake"]["is"] > scores["noise"]["is"], scores


def test_callback_logs_caches_and_rekeys(tmp_path, classifier, trained):
    model, data = trained
    metrics = GenerativeMetrics(classifier, metrics=["fid", "kid", "is", "precision", "recall", "class_histogram"],
                                num_samples=300, num_real=400, cache_dir=str(tmp_path / "cache"), kid_subset_size=200)
    trainer = make_trainer(tmp_path, callbacks=[metrics], limit_val_batches=1)
    trainer.validate(model, data)
    first = dict(metrics.last)
    for key in ("fid", "kid", "kid_std", "is", "precision", "recall", "class_kl", "classes_covered"):
        assert f"metrics/{key}" in first and f"metrics/{key}" in trainer.callback_metrics
    assert 1.0 <= first["metrics/is"] <= 10.0 and first["metrics/classes_covered"] >= 8
    files = list((tmp_path / "cache").glob("*.pt"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    # a fresh callback reads the cache (same numbers, file untouched) ...
    again = GenerativeMetrics(classifier, metrics=["fid"], num_samples=300, num_real=400, cache_dir=str(tmp_path / "cache"))
    make_trainer(tmp_path, callbacks=[again], limit_val_batches=1).validate(model, data)
    assert again.last["metrics/fid"] == pytest.approx(first["metrics/fid"], rel=1e-9)
    assert files[0].stat().st_mtime_ns == stamp
    # ... and a changed key (another number of real samples) computes a new entry
    other = GenerativeMetrics(classifier, metrics=["fid"], num_samples=300, num_real=300, cache_dir=str(tmp_path / "cache"))
    make_trainer(tmp_path, callbacks=[other], limit_val_batches=1).validate(model, data)
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 2
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["metrics/fid"] == first["metrics/fid"]


def test_mode_coverage_during_fit(tmp_path):
    model = toy_gan(max_generator_steps=4)
    metrics = GenerativeMetrics(metrics=["modes"], num_samples=500, every_n_generator_steps=2)
    trainer = make_trainer(tmp_path, callbacks=[metrics])
    trainer.fit(model, toy_data())
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["generator_steps"] for r in records] == [2, 4]
    assert set(records[-1]) >= {"metrics/modes", "metrics/high_quality", "metrics/reverse_kl"}
    assert 0 <= records[-1]["metrics/modes"] <= 8


def test_unknown_metric_and_missing_extractor_are_explained():
    with pytest.raises(ValueError, match="valid: fid, kid"):
        GenerativeMetrics(metrics=["fdi"])
    with pytest.raises(ValueError, match="need a feature extractor"):
        GenerativeMetrics(metrics=["fid"])


def test_evaluate_scores_a_folder_against_the_digits(tmp_path, trained, capsys):
    model, _ = trained
    folder = tmp_path / "fake"
    for i, image in enumerate(to_uint8(model.sample(200, generator=torch.Generator().manual_seed(1)))):
        save_png(image, folder / f"{i:04d}.png")
    values = evaluate.main(["--fake", str(folder), "--real", "digits", "--json", str(tmp_path / "m.json")])
    assert {"fid", "kid", "is"} <= set(values)
    assert json.loads((tmp_path / "m.json").read_text())["n_fake"] == 200
    assert "| fid |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        evaluate.main(["--fake", str(tmp_path / "missing"), "--real", "digits"])


def test_inception_path_runs_end_to_end_from_a_weights_file(tmp_path, trained):
    model, data = trained
    weights = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    FIDInceptionV3.save_random_weights(weights)
    metrics = GenerativeMetrics(FIDInceptionV3(weights_path=str(weights)), metrics=["fid", "is"], num_samples=6,
                                num_real=6, batch_size=6, cache_dir=str(tmp_path / "cache"))
    make_trainer(tmp_path, callbacks=[metrics], limit_val_batches=1).validate(model, data)
    assert torch.isfinite(torch.tensor(metrics.last["metrics/fid"])) and metrics.last["metrics/is"] >= 1.0


def test_missing_inception_weights_name_the_file_and_the_option(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"pt_inception-2015-12-05-6726825d\.pth.*weights_path|weights_path.*pt_inception"):
        FIDInceptionV3(weights_path=str(tmp_path / "nowhere.pth"))


SCORED = ["fid", "kid", "is", "precision", "recall", "density", "coverage", "hf_energy"]


def _validate(tmp_path: Path, ckpt: Path, devices: int) -> dict:
    """``train.py validate`` on 1 or 2 CPU processes (gloo) with the digits metrics; rank 0's record."""
    root = tmp_path / f"validate{devices}"
    config = {  # JSON is YAML
        "trainer": {"accelerator": "cpu", "devices": devices, "strategy": "ddp" if devices > 1 else "auto",
                    "default_root_dir": str(root), "limit_val_batches": 2, "enable_progress_bar": False,
                    "callbacks": [{"class_path": "callbacks.GenerativeMetrics", "init_args": {
                        "extractor": {"class_path": "callbacks.metrics.DigitsClassifier"}, "metrics": SCORED,
                        "num_samples": 301, "num_real": 250, "batch_size": 64, "max_features": 200, "num_workers": 0,
                        "kid_subset_size": 100, "cache_dir": str(tmp_path / f"cache{devices}")}}]},
        "model": {"class_path": "gan_modules.GAN", "init_args": {
            "ema_decay": 0.99,
            "generator": {"class_path": "gan_modules.nets.DCGANGenerator", "init_args": {"latent_dim": 64, "base_channels": 8}},
            "discriminator": {"class_path": "gan_modules.nets.DCGANDiscriminator", "init_args": {"base_channels": 8}}}},
        "data": {"class_path": "datamodules.DigitsDataModule", "init_args": {"batch_size": 32}},
    }
    path = tmp_path / f"validate{devices}.yaml"
    path.write_text(json.dumps(config))
    if devices == 1:  # in-process: the same code path as the script, one interpreter start fewer
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as each DDP process (OMP_NUM_THREADS=1): the same float32 kernels
        try:
            train.main(["validate", "--config", str(path), f"--ckpt_path={ckpt}"])
        finally:
            torch.set_num_threads(threads)
    else:
        env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
        proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "validate", "--config", str(path),
                               f"--ckpt_path={ckpt}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-4000:]
    lines = (root / "validate" / "metrics.jsonl").read_text().splitlines()  # validate logs into <run>/validate/
    assert len(lines) == 1  # rank 0 alone writes
    return json.loads(lines[0])


def test_two_process_ddp_equals_one_process(tmp_path):
    torch.manual_seed(0)
    model = GAN(DCGANGenerator((1, 32, 32), latent_dim=64, base_channels=8), DCGANDiscriminator((1, 32, 32), base_channels=8),
                ema_decay=0.99, max_generator_steps=5, d_optimizer=partial(torch.optim.Adam, lr=2e-4))
    trainer = make_trainer(tmp_path, enable_checkpointing=False)
    trainer.fit(model, DigitsDataModule(batch_size=32))
    ckpt = tmp_path / "model.ckpt"
    trainer.save_checkpoint(ckpt)
    single, double = _validate(tmp_path, ckpt, 1), _validate(tmp_path, ckpt, 2)
    # 301 samples in batches of 64: rank 0 makes batches 0, 2, 4 (the last one 45 samples), rank 1 batches 1, 3.
    # FID and IS come from float64 sums all-reduced across ranks: equal up to the order of additions.
    assert double["metrics/fid"] == pytest.approx(single["metrics/fid"], rel=1e-9)
    assert double["metrics/is"] == pytest.approx(single["metrics/is"], rel=1e-9)
    # the spectrum sums too (over the 301 samples and the 250 real images)
    for key in ("metrics/hf_energy", "metrics/hf_energy_fake", "metrics/hf_energy_real"):
        assert double[key] == pytest.approx(single[key], rel=1e-9), key
    # KID and the k-NN metrics work on the first 200 samples' features, gathered exactly.
    for key in ("metrics/kid", "metrics/kid_std", "metrics/precision", "metrics/recall", "metrics/density",
                "metrics/coverage"):
        assert double[key] == single[key], key
