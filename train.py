"""The entry point: ``python train.py {fit,validate,test,predict} --config configs/<preset>.yaml``.

LightningCLI over any ``GANModule`` subclass and any ``GANDataModule`` (subclass mode). On top of the
plain CLI it:

* links the datamodule's ``sample_shape``, ``num_classes`` and ``input_shape`` into the networks (the model reads them
  from its generator), so a config never states a shape twice;
* keeps a run in one folder, ``trainer.default_root_dir`` (default ``runs/<config name>``, the last
  ``--config`` not in a ``trainer/`` folder of fragments): TensorBoard logs, the resolved
  ``config.yaml``, ``checkpoints/`` (``last.ckpt`` always), ``samples/``, ``metrics.jsonl``;
  ``validate``/``test``/``predict`` write their config and logs into ``<run>/<subcommand>/`` and never
  touch the fit's files;
* guards the folder (see docs/training.md, "The run folder"): ``fit`` refuses a folder that holds a
  run unless told to resume it (``--ckpt_path last``) or to start over (``--overwrite true``), and a
  lock file refuses a second live fit in the same folder; ``--trainer.fast_dev_run`` writes into a
  fresh temporary folder, never the run's;
* resumes honestly: ``--ckpt_path last`` is the run's ``checkpoints/last.ckpt`` (an error when there is
  none), the checkpoint's recorded model and data settings are compared with the requested ones and a
  change that would not take effect is refused, naming each setting; nothing from the checkpoint is
  merged silently into the config;
* adds ``RunCheckpoint`` (``last.ckpt`` every few minutes and at every stop, exactly resumable),
  ``DivergenceGuard``, ``Preemption`` (SIGTERM saves ``last.ckpt`` and exits) and ``ImageWriter`` (it
  acts only under ``predict``) unless the config lists its own;
* exits with an error when ``fit`` trained no batch;
* turns ``strategy: ddp`` into :class:`gan_modules.GANDDPStrategy` (each player's gradients reduced in
  one bucket, no ``find_unused_parameters``); ``ddp_find_unused_parameters_true`` is left as it is.
"""

from __future__ import annotations

import atexit
import logging
import tempfile
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import Namespace
from lightning.pytorch.cli import LightningCLI

# importing the classes (the package loads them lazily) registers them for short names in YAML
from callbacks import (  # noqa: F401
    ChannelsLast,
    DivergenceGuard,
    GenerativeMetrics,
    ImageWriter,
    Preemption,
    RunCheckpoint,
    SampleGrid,
)
from callbacks.checkpoints import find_run_checkpoint
from callbacks.run_folder import (
    RunFolderError,
    RunLock,
    clear_run,
    config_changes,
    hparam_changes,
    process_rank,
    read_checkpoint,
    recorded_config,
    run_contents,
)
from datamodules.base import GANDataModule
from gan_modules.base import GANModule

log = logging.getLogger("train")

_DEFAULT_CALLBACKS = {
    "RunCheckpoint": lambda root: {"dirpath": str(Path(root) / "checkpoints")},
    "DivergenceGuard": lambda root: {},
    "ImageWriter": lambda root: {"output_dir": str(Path(root) / "predictions")},
    "Preemption": lambda root: {},
}
_CLASS_PATHS = {
    "RunCheckpoint": "callbacks.RunCheckpoint",
    "DivergenceGuard": "callbacks.DivergenceGuard",
    "ImageWriter": "callbacks.ImageWriter",
    "Preemption": "callbacks.Preemption",
}
# `strategy: ddp` (and its spawn/fork variants) becomes the GAN-aware strategy: plain DDP fails on a GAN
_GAN_DDP = {"ddp": "popen", "gan_ddp": "popen", "ddp_spawn": "spawn", "ddp_fork": "fork", "ddp_notebook": "fork"}


# What every preset would otherwise repeat: a preset lists only what it changes.
SEED_DEFAULT = 0
TRAINER_DEFAULTS = {"max_epochs": -1, "logger": True}  # runs stop at max_generator_steps; TensorBoard logs


def _run_root(config: Namespace) -> str:
    """``trainer.default_root_dir``, or ``runs/<name of the last preset config>``."""
    if config.trainer.default_root_dir:
        return str(config.trainer.default_root_dir)
    # the last config that is not a trainer fragment (configs/trainer/*.yaml composed after a preset)
    sources = [Path(str(c)) for c in config.get("config") or []]
    presets = [c for c in sources if c.parent.name != "trainer"] or sources
    stem = presets[-1].stem if presets else "default"
    return str(Path("runs") / stem)


class GANCLI(LightningCLI):
    """LightningCLI with the data-to-model links, the one-folder-per-run defaults and their guards, and the
    common trainer defaults (``seed_everything: 0``, ``trainer.max_epochs: -1``, ``trainer.logger: true``)."""

    lock: RunLock | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("seed_everything_default", SEED_DEFAULT)
        kwargs.setdefault("trainer_defaults", dict(TRAINER_DEFAULTS))
        super().__init__(*args, **kwargs)

    def _run_subcommand(self, subcommand: str) -> None:
        try:
            super()._run_subcommand(subcommand)
        finally:
            if self.lock is not None:
                self.lock.release()

    def add_arguments_to_parser(self, parser) -> None:  # noqa: ANN001 (jsonargparse's parser)
        # A link whose target the chosen network class lacks is dropped by jsonargparse, so unconditional
        # networks (no num_classes argument) stay unconditional on labelled data. The model itself reads
        # sample_shape and num_classes from its generator, so nothing is linked into it directly.
        for net in ("generator", "discriminator"):
            for key in ("sample_shape", "num_classes", "input_shape"):
                parser.link_arguments(f"data.{key}", f"model.init_args.{net}.init_args.{key}", apply_on="instantiate")
        parser.add_argument("--overwrite", type=bool, default=False,
                            help="fit: delete the run already in trainer.default_root_dir (checkpoints, samples, "
                                 "logs) and start over; without it such a folder is refused")

    def _parse_ckpt_path(self) -> None:
        # `--ckpt_path last` names this run's checkpoints/last.ckpt. For fit, nothing from the checkpoint
        # is merged into the config: a resume compares instead (before_instantiate_classes). For
        # validate/test/predict the checkpoint's model settings are taken, as LightningCLI does.
        sub = self.config.get("subcommand")
        if not sub:
            return
        config = self.config[sub]
        if config.get("ckpt_path") == "last":
            path = Path(_run_root(config)) / "checkpoints" / "last.ckpt"
            if not path.is_file():
                self.parser.error(f"--ckpt_path last: there is no '{path}' to resume (is --trainer.default_root_dir "
                                  "or the --config the run's?); leave --ckpt_path out to start a new run")
            config.ckpt_path = str(path)
        if config.get("ckpt_path") and sub != "fit":
            read_checkpoint(config.ckpt_path)  # a clear error for an empty or truncated file
            super()._parse_ckpt_path()

    def before_instantiate_classes(self) -> None:
        sub = self.subcommand
        config = self.config[sub] if sub else self.config
        trainer = config.trainer
        root = _run_root(config)
        if trainer.get("fast_dev_run"):
            # a smoke test writes nowhere near a run's checkpoints, samples or metrics
            root = tempfile.mkdtemp(prefix=f"{Path(root).name}-fast_dev_run-")
            log.warning(f"fast_dev_run: writing into the temporary folder {root}")
        trainer.default_root_dir = root
        if sub == "fit" and not trainer.get("fast_dev_run") and process_rank() == 0:
            self._guard_fit_folder(config, root)
        if isinstance(trainer.strategy, str) and trainer.strategy in _GAN_DDP:
            trainer.strategy = Namespace(class_path="gan_modules.strategy.GANDDPStrategy",
                                         init_args=Namespace(start_method=_GAN_DDP[trainer.strategy]))
        if trainer.logger is None or trainer.logger is True:
            # validate/test/predict log (and save their config) into <run>/<subcommand>/
            name = "" if sub in ("fit", None) else sub
            trainer.logger = Namespace(class_path="lightning.pytorch.loggers.TensorBoardLogger",
                                       init_args=Namespace(save_dir=root, name=name, version=""))
        present = {str(cb.class_path).rsplit(".", 1)[-1] for cb in (trainer.callbacks or [])}
        extra = [Namespace(class_path=_CLASS_PATHS[name], init_args=Namespace(**make(root)))
                 for name, make in _DEFAULT_CALLBACKS.items() if name not in present]
        if trainer.enable_checkpointing is False or trainer.get("fast_dev_run"):
            extra = [cb for cb in extra if not cb.class_path.endswith("RunCheckpoint")]
        trainer.callbacks = list(trainer.callbacks or []) + extra

    def _guard_fit_folder(self, config: Namespace, root: str) -> None:
        """Takes the folder's lock, then refuses to start over a run or to resume with changed settings."""
        self.lock = RunLock(root)
        try:
            for warning in self.lock.acquire():
                log.warning(warning)
            atexit.register(self.lock.release)
            ckpt_path = config.get("ckpt_path")
            if ckpt_path is None:
                found = run_contents(root)
                if found and config.get("overwrite"):
                    log.warning(f"--overwrite: deleting the run in '{root}' ({', '.join(found)})")
                    clear_run(root)
                elif found:
                    raise RunFolderError(
                        f"'{root}' already holds a run ({', '.join(found)}). Resume it with --ckpt_path last, "
                        f"give this run another folder with --trainer.default_root_dir DIR, or delete that run "
                        f"and start over with --overwrite true")
            elif Path(str(ckpt_path)).is_file():
                self._check_resume(config, Path(str(ckpt_path)))
        except BaseException:
            self.lock.release()
            raise

    def _check_resume(self, config: Namespace, path: Path) -> None:
        checkpoint = read_checkpoint(path)
        if "gan" not in checkpoint:
            raise RunFolderError(f"--ckpt_path: '{path}' was not written by a GANModule (it has no 'gan' entry)")
        requested = self._settings(config)
        recorded = recorded_config(checkpoint)
        if recorded is not None:
            refused, accepted = config_changes(recorded, requested)
        else:
            model_args = requested.get("model", {}).get("init_args", {}) or {}
            refused, accepted = hparam_changes(checkpoint.get("hyper_parameters", {}), model_args)
        if refused:
            raise RunFolderError(
                f"--ckpt_path '{path}': a resumed run continues with the model and data settings it was trained "
                "with (weights, optimizer states, learning rates and the data order come from the checkpoint), "
                "and these requested settings differ from them:\n  " + "\n  ".join(refused) +
                "\nDrop these changes to resume, or train with them in a new run (another "
                "--trainer.default_root_dir). Settings that may change on resume: every trainer.* option, the "
                "callbacks, max_generator_steps, compile, num_workers, predict_samples.")
        state = checkpoint["gan"]
        message = (f"resuming '{path}': generator step {state.get('generator_steps')}, "
                   f"{state.get('images_seen', 0) / 1000:.1f} kimg, epoch {checkpoint.get('epoch')}; model and data "
                   "settings as recorded in the checkpoint")
        log.warning(message + ("; changed: " + "; ".join(accepted) if accepted else ""))

    def _settings(self, config: Namespace) -> dict[str, Any]:
        """The model and data sections of a subcommand's config, as plain data."""
        dumped = yaml.safe_load(self._parser(self.subcommand).dump(config, skip_link_targets=False,
                                                                  format="yaml", skip_validation=True))
        return {"model": dumped.get("model"), "data": dumped.get("data")}

    def after_instantiate_classes(self) -> None:
        if self.subcommand == "fit":
            run_checkpoint = find_run_checkpoint(self.trainer)
            if run_checkpoint is not None:  # recorded in every checkpoint, for the comparison on resume
                run_checkpoint.run_config = yaml.safe_dump(self._settings(self.config["fit"]), sort_keys=True)

    def after_fit(self) -> None:
        if self.trainer.num_training_batches == 0:
            data = self.datamodule
            size = None
            try:
                size = len(data.train_dataloader().dataset)
            except Exception:  # noqa: BLE001 (only for the message)
                pass
            raise SystemExit(
                f"error: fit trained no batch: the training set has {size if size is not None else 'too few'} "
                f"item(s) and data.batch_size is {getattr(data, 'batch_size', '?')} per process (the last partial batch "
                "is dropped). Lower data.batch_size or add data.")


def main(args: list[str] | None = None) -> GANCLI:
    try:
        return GANCLI(
            GANModule,
            GANDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_kwargs={"overwrite": True},  # a resumed run rewrites the same config.yaml
            auto_configure_optimizers=False,
            args=args,
        )
    except RunFolderError as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
