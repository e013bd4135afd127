"""The table-writing paths of benchmark scripts that take their rows from logs or presets (no training)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import data_efficiency, equal_wallclock  # noqa: E402

ROW = {"fraction": 1.0, "augment": "none", "train_s": 150.0, "fid": 2.5, "kid": 0.012, "is": 3.2, "ada_p": None}


def test_data_efficiency_table_from_several_logs(tmp_path):
    first, second = tmp_path / "dcgan.log", tmp_path / "stylegan.log"
    first.write_text("some progress line\n" + json.dumps({"preset": "dcgan_digits", **ROW}) + "\n")
    second.write_text(json.dumps({"preset": "stylegan_digits", **ROW, "augment": "ada", "ada_p": 0.25, "fid": 1.5})
                      + "\n" + json.dumps({"preset": "stylegan_digits", "fraction": 0.1, "augment": "none",
                                           "error": "RuntimeError: boom"}) + "\n")
    out = tmp_path / "results.md"
    rows = data_efficiency.main(["--from-log", str(first), str(second), "--out", str(out)])
    assert [r["preset"] for r in rows] == ["dcgan_digits", "stylegan_digits", "stylegan_digits"]
    text = out.read_text()
    assert "<!-- data_efficiency:start -->" in text and "<!-- data_efficiency:end -->" in text
    assert "| dcgan_digits | 100 | none | 150 | 2.50 | 12.0 | 3.20 | – |" in text
    assert "| stylegan_digits | 100 | ada | 150 | 1.50 | 12.0 | 3.20 | 0.250 |" in text
    assert "| stylegan_digits | 10 | none | – | failed: RuntimeError: boom" in text
    assert "the rows its runs printed" in text


def test_equal_wallclock_budgets_come_from_the_presets_and_overrides_are_checked():
    configs = {c.stem: c for c in (ROOT / "configs").glob("*_digits.yaml")}
    assert equal_wallclock.preset_steps(configs["stylegan_digits"]) == 1200
    assert equal_wallclock.parse_steps(["r3gan_digits=600"], ["r3gan_digits"]) == {"r3gan_digits": 600}
    for bad in (["r3gan_digits"], ["r3gan_digits=0"], ["r3gan_digits=x"], ["dcgan_digits=10"]):
        with pytest.raises(SystemExit):
            equal_wallclock.parse_steps(bad, ["r3gan_digits"])


def test_equal_wallclock_table_reports_seconds_per_step():
    class Args:
        threads, num_samples = 1, 2000

    rows = [{"preset": "stylegan_digits", "family": "StyleGAN2", "steps": 1200, "train_s": 360.0, "fid": 1.6,
             "kid": 0.005, "is": 4.9},
            {"preset": "r3gan_digits", "family": "R3GAN", "steps": 2400, "error": "RuntimeError: x"}]
    text = equal_wallclock.table(rows, Args, "cmd")
    assert "| stylegan_digits | StyleGAN2 | 1200 | 360 | 0.300 | 1.60 | 5.0 | 4.90 |" in text
    assert "| r3gan_digits | R3GAN | 2400 | – | – | failed: RuntimeError: x" in text


def test_conditioning_probe_reads_attributes_from_mu_and_loses_them_in_noise():
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from benchmarks import text_to_image
    from datamodules.text_image import TextImageDataModule
    from gan_modules.nets.stackgan import StackGANStage1Generator

    data = TextImageDataModule()
    data.setup()
    torch.manual_seed(0)
    g = StackGANStage1Generator(noise_dim=8, cond_dim=64, base_channels=4).eval()
    clear = text_to_image.conditioning_probe(g, data)
    assert clear["mu/colour"] > 0.95 and clear["mu/position"] > 0.95  # mu: a random linear map of phi
    with torch.no_grad():
        g.ca.fc.bias[64:] = 20.0  # log sigma^2 = 20: sigma ~ 2e4 drowns mu
    noisy = text_to_image.conditioning_probe(g, data)
    assert noisy["sigma"] > 1e3 and noisy["mu/colour"] == clear["mu/colour"]
    assert noisy["c/colour"] < 0.6 and noisy["c/shape"] < 0.6
    g.ca.noise = False  # without conditioning augmentation the code is mu: nothing drowns it
    plain = text_to_image.conditioning_probe(g, data)
    assert plain["sigma"] == 0.0 and plain["c/colour"] == plain["mu/colour"] == clear["mu/colour"]


def test_stackgan_ablation_table_from_a_log(tmp_path):
    from benchmarks import stackgan_ablation

    scores = {"attr/colour": 1.0, "attr/shape": 0.92, "attr/size": 1.0, "attr/position": 1.0, "r_precision": 0.99,
              "fid": 3.549}
    row = {"variant": "no_ca_match10", "train_s": 1098.0, "steps": 1500, "test": scores,
           "heldout": {**scores, "attr/shape": 0.634}, "probe": {"c/colour": 1.0, "c/shape": 0.49}}
    log = tmp_path / "rows.jsonl"
    log.write_text(json.dumps(row) + "\n" + json.dumps({"variant": "paper", "error": "RuntimeError: x"}) + "\n")
    out = tmp_path / "results.md"
    stackgan_ablation.main(["--from-log", str(log), "--out", str(out)])
    text = out.read_text()
    assert ("| no CA, matching term 10 (the presets) | 1500 | 1098 | 1.000 | 0.920 | 1.000 | 1.000 | 0.990 | 3.55 | "
            "1.000 | 0.634 | 1.000 | 0.490 |") in text
    assert "failed: RuntimeError: x" in text
    # every variant sets CA, the KL weight and the matching weight itself, whatever the preset says
    for _, overrides in stackgan_ablation.VARIANTS.values():
        keys = sorted(item.split("=")[0] for item in overrides)
        assert keys == sorted([stackgan_ablation.CA[:-1], "--model.init_args.matching_weight",
                               "--model.init_args.kl_weight"])
