"""Families and datamodules forward the base class's arguments with ``**kwargs``: the CLI must still see them.

For every preset: ``--print_config`` lists every argument of ``GANModule`` (except the few a family fixes
itself) and of ``GANDataModule``, and the printed config, read back as a config, prints the same and
builds the same model.
"""

from __future__ import annotations

import contextlib
import inspect
import io
from pathlib import Path

import pytest
import yaml
from presets import CONFIGS, data_overrides, light_metrics_config

import train
from datamodules.base import GANDataModule
from gan_modules.base import GANModule

# Arguments a family sets itself when it calls GANModule.__init__, so they are not options of that family.
FIXED_BY_FAMILY = {
    "R3GAN": {"g_scheduler", "d_scheduler", "scheduler_interval", "ema_decay", "ema_half_life_kimg", "ema_rampup"},
}


def _parameters(cls: type) -> set[str]:
    return {name for name, p in inspect.signature(cls.__init__).parameters.items()
            if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def _printed(args: list[str]) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        train.main(["fit", *args, "--print_config"])
    return yaml.safe_load(out.getvalue())


def _model(args: list[str], root: Path) -> GANModule:
    cli = train.GANCLI(GANModule, GANDataModule, subclass_mode_model=True, subclass_mode_data=True,
                       auto_configure_optimizers=False, run=False, save_config_callback=None,
                       args=[*args, f"--trainer.default_root_dir={root}", "--trainer.logger=false"])
    return cli.model


def _family(config: Path) -> str:
    return yaml.safe_load(config.read_text())["model"]["class_path"]


# Building a model costs seconds: the read-back model is built for the first preset of each family.
ONE_PER_FAMILY = list({_family(config): config for config in reversed(CONFIGS)}.values())


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_print_config_lists_every_base_argument_and_reads_back(config: Path, tmp_path: Path) -> None:
    preset = light_metrics_config(config, tmp_path)
    overrides = data_overrides(config, tmp_path)
    printed = _printed(["--config", str(preset), *overrides])
    family = printed["model"]["class_path"].rsplit(".", 1)[-1]
    model_args = set(printed["model"]["init_args"])
    missing = _parameters(GANModule) - FIXED_BY_FAMILY.get(family, set()) - model_args
    assert not missing, f"{family} hides GANModule arguments {sorted(missing)} from the CLI"
    assert not FIXED_BY_FAMILY.get(family, set()) & model_args
    missing = _parameters(GANDataModule) - set(printed["data"]["init_args"])
    assert not missing, f"{printed['data']['class_path']} hides GANDataModule arguments {sorted(missing)}"

    # The printed config is a complete config: read back, it prints the same and builds the same model.
    written = tmp_path / "printed.yaml"
    written.write_text(yaml.safe_dump(printed, sort_keys=False))
    assert _printed(["--config", str(written)]) == printed
    if config not in ONE_PER_FAMILY:
        return
    # run=False builds the objects without the fit subcommand, whose own options it does not take
    objects = tmp_path / "objects.yaml"
    objects.write_text(yaml.safe_dump({k: v for k, v in printed.items() if k not in ("ckpt_path", "weights_only")}))
    model = _model(["--config", str(objects)], tmp_path)
    assert type(model).__name__ == family
    for name, value in printed["model"]["init_args"].items():
        if name in model.hparams and not isinstance(value, dict):  # networks and optimizers are not hparams
            assert model.hparams[name] == value, name
