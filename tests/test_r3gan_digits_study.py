"""benchmarks/r3gan_digits_study.py: its variants are valid train.py arguments, the schedules span each
run, and ``--from-log`` writes the table of earlier rows."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import train  # noqa: E402
from benchmarks import r3gan_digits_study as study  # noqa: E402

PRESET = ROOT / "configs" / "r3gan_digits.yaml"


def _printed(args: list[str]) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        train.main(["fit", "--config", str(PRESET), *args, "--print_config"])
    return yaml.safe_load(out.getvalue())


def test_schedules_span_the_run_unless_a_variant_sets_them():
    assert study.run_overrides(PRESET, study.VARIANTS["before"], 400)[-1] == "--model.init_args.decay_kimg=25.6"
    assert study.run_overrides(PRESET, study.VARIANTS["batch32"], 400)[-1] == "--model.init_args.decay_kimg=12.8"
    fixed = study.Variant("fixed decay", ["--model.init_args.decay_kimg=3.0"])
    assert study.run_overrides(PRESET, fixed, 400) == ["--model.init_args.decay_kimg=3.0"]


@pytest.mark.parametrize("name", list(study.VARIANTS))
def test_every_variant_is_a_valid_command_line(name):
    variant = study.VARIANTS[name]
    config = _printed(study.run_overrides(PRESET, variant, 100))
    batch = study.batch_size(PRESET, variant.overrides)
    assert config["data"]["init_args"]["batch_size"] == batch
    assert config["model"]["init_args"]["decay_kimg"] == pytest.approx(100 * batch / 1000)
    last = {item.split("=", 1)[0]: item for item in variant.overrides}  # the last of a key wins
    for item in last.values():  # every override reached the parsed config
        key, value = item.removeprefix("--").split("=", 1)
        node = config
        for part in key.split("."):
            node = node[part]
        assert node == yaml.safe_load(value), item


def test_from_log_writes_the_table(tmp_path):
    row = {"variant": "lr_x4", "what": "lr 8e-4 -> 2e-4 (4x)", "batch": 64, "train_s": 1.0, "ema_fid": 4.1666,
           "ema_kid": 0.0382, "raw_fid": 3.794, "ema_class_kl": 0.1079}
    log = tmp_path / "run.err"
    log.write_text("some warning\n" + json.dumps(row) + "\n")
    out = tmp_path / "notes.md"
    rows = study.main(["--from-log", str(log), "--generator-steps", "400", "--out", str(out)])
    assert rows[0]["steps"] == 400
    text = out.read_text()
    assert "<!-- r3gan_digits_study:start -->" in text
    assert "| lr_x4 | lr 8e-4 -> 2e-4 (4x) | 64 | 400 | 4.17 | 38.2 | 3.79 | 0.108 |" in text


def test_the_adopted_row_is_the_preset():
    """The study's ``combined_lr_x8`` row (the pre-study settings plus the adopted changes) trains the preset file."""
    run = study.run_overrides(PRESET, study.VARIANTS["combined_lr_x8"], 1200)
    assert _printed(run) == _printed(study.run_overrides(PRESET, study.VARIANTS["preset"], 1200))
