"""The entry point: ``python train.py {fit,validate,test,predict} --config configs/<preset>.yaml``.

LightningCLI over any ``GANModule`` subclass and any ``GANDataModule`` (subclass mode). On top of the
plain CLI it:

* links the datamodule's ``sample_shape``, ``num_classes`` and ``input_shape`` into the networks (the model reads them
  from its generator), so a config never states a shape twice;
* keeps a run in one folder, ``trainer.default_root_dir`` (default ``runs/<config name>``, the last
  ``--config`` not in a ``trainer/`` folder of fragments): TensorBoard
  logs, the resolved ``config.yaml``, ``checkpoints/`` (``last.ckpt`` always), ``samples/`` and
  ``predictions/``; so ``--ckpt_path last`` resumes the run;
* adds ``ModelCheckpoint``, ``DivergenceGuard``, ``Preemption`` (SIGTERM saves ``last.ckpt`` and exits)
  and ``ImageWriter`` (it acts only under ``predict``) unless the config lists its own;
* turns ``strategy: ddp`` into :class:`gan_modules.GANDDPStrategy` (each player's gradients reduced in
  one bucket, no ``find_unused_parameters``); ``ddp_find_unused_parameters_true`` is left as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch.cli import LightningCLI

# importing the classes (the package loads them lazily) registers them for short names in YAML
from callbacks import ChannelsLast, DivergenceGuard, GenerativeMetrics, ImageWriter, Preemption, SampleGrid  # noqa: F401
from datamodules.base import GANDataModule
from gan_modules.base import GANModule

_DEFAULT_CALLBACKS = {
    # no version counter: a resumed run rewrites last.ckpt instead of writing last-v1.ckpt beside it
    "ModelCheckpoint": lambda root: {"dirpath": str(Path(root) / "checkpoints"), "save_last": True,
                                     "enable_version_counter": False},
    "DivergenceGuard": lambda root: {},
    "ImageWriter": lambda root: {"output_dir": str(Path(root) / "predictions")},
    "Preemption": lambda root: {},
}
_CLASS_PATHS = {
    "ModelCheckpoint": "lightning.pytorch.callbacks.ModelCheckpoint",
    "DivergenceGuard": "callbacks.DivergenceGuard",
    "ImageWriter": "callbacks.ImageWriter",
    "Preemption": "callbacks.Preemption",
}
# `strategy: ddp` (and its spawn/fork variants) becomes the GAN-aware strategy: plain DDP fails on a GAN
_GAN_DDP = {"ddp": "popen", "gan_ddp": "popen", "ddp_spawn": "spawn", "ddp_fork": "fork", "ddp_notebook": "fork"}


# What every preset would otherwise repeat: a preset lists only what it changes.
SEED_DEFAULT = 0
TRAINER_DEFAULTS = {"max_epochs": -1, "logger": True}  # runs stop at max_generator_steps; TensorBoard logs


class GANCLI(LightningCLI):
    """LightningCLI with the data-to-model links, the one-folder-per-run defaults and the common trainer
    defaults (``seed_everything: 0``, ``trainer.max_epochs: -1``, ``trainer.logger: true``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("seed_everything_default", SEED_DEFAULT)
        kwargs.setdefault("trainer_defaults", dict(TRAINER_DEFAULTS))
        super().__init__(*args, **kwargs)

    def add_arguments_to_parser(self, parser) -> None:  # noqa: ANN001 (jsonargparse's parser)
        # A link whose target the chosen network class lacks is dropped by jsonargparse, so unconditional
        # networks (no num_classes argument) stay unconditional on labelled data. The model itself reads
        # sample_shape and num_classes from its generator, so nothing is linked into it directly.
        for net in ("generator", "discriminator"):
            for key in ("sample_shape", "num_classes", "input_shape"):
                parser.link_arguments(f"data.{key}", f"model.init_args.{net}.init_args.{key}", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        trainer = config.trainer
        if not trainer.default_root_dir:
            # the last config that is not a trainer fragment (configs/trainer/*.yaml composed after a preset)
            sources = [Path(str(c)) for c in config.get("config") or []]
            presets = [c for c in sources if c.parent.name != "trainer"] or sources
            stem = presets[-1].stem if presets else "default"
            trainer.default_root_dir = str(Path("runs") / stem)
        root = trainer.default_root_dir
        if isinstance(trainer.strategy, str) and trainer.strategy in _GAN_DDP:
            trainer.strategy = Namespace(class_path="gan_modules.strategy.GANDDPStrategy",
                                         init_args=Namespace(start_method=_GAN_DDP[trainer.strategy]))
        if trainer.logger is None or trainer.logger is True:
            trainer.logger = Namespace(class_path="lightning.pytorch.loggers.TensorBoardLogger",
                                       init_args=Namespace(save_dir=root, name="", version=""))
        present = {str(cb.class_path).rsplit(".", 1)[-1] for cb in (trainer.callbacks or [])}
        extra = [Namespace(class_path=_CLASS_PATHS[name], init_args=Namespace(**make(root)))
                 for name, make in _DEFAULT_CALLBACKS.items() if name not in present]
        if trainer.enable_checkpointing is False:
            extra = [cb for cb in extra if not cb.class_path.endswith("ModelCheckpoint")]
        trainer.callbacks = list(trainer.callbacks or []) + extra


def main(args: list[str] | None = None) -> GANCLI:
    return GANCLI(
        GANModule,
        GANDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},  # a resumed run rewrites the same config.yaml
        auto_configure_optimizers=False,
        args=args,
    )


if __name__ == "__main__":
    main()
