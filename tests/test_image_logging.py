"""SampleGrid's pictures reach every logger that takes images: TensorBoard, W&B and MLflow offline, CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from conftest import digits_data, digits_gan, make_trainer
from lightning.pytorch.loggers import CSVLogger, MLFlowLogger, TensorBoardLogger, WandbLogger

from callbacks import SampleGrid


def test_sample_grids_go_to_every_logger(tmp_path, monkeypatch) -> None:
    pytest.importorskip("wandb")
    pytest.importorskip("mlflow")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # the offline file store (mlflow 3 asks for a database)
    loggers = [TensorBoardLogger(tmp_path, name="tb", version=0), CSVLogger(tmp_path, name="csv", version=0),
               WandbLogger(save_dir=str(tmp_path), offline=True, project="gan-modules-test"),
               MLFlowLogger(experiment_name="gan-modules-test", tracking_uri=(tmp_path / "mlruns").as_uri())]
    trainer = make_trainer(tmp_path, logger=loggers, callbacks=[SampleGrid(every_n_generator_steps=1)],
                           log_every_n_steps=1)
    try:
        trainer.fit(digits_gan(max_generator_steps=2), digits_data(batch_size=8))
    finally:
        loggers[2].experiment.finish()

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tb" / "version_0"))
    events.Reload()
    assert [e.step for e in events.Images("samples")] == [1, 2]

    with open(tmp_path / "csv" / "version_0" / "metrics.csv") as f:
        paths = [row["samples_path"] for row in csv.DictReader(f) if row.get("samples_path")]
    assert [Path(p).name for p in paths] == ["step_0000001.png", "step_0000002.png"] and all(Path(p).is_file() for p in paths)

    media = list(tmp_path.glob("wandb/offline-run-*/files/media/images/samples_*.png"))
    assert len(media) == 2

    client = loggers[3].experiment
    images = [a.path for a in client.list_artifacts(loggers[3].run_id, "images")]
    assert len(images) >= 2 and all("samples" in p for p in images)
