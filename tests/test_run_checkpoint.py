"""RunCheckpoint's snapshots and best-k checkpoints: written at batch ends, so each resumes exactly."""

from __future__ import annotations

from pathlib import Path

from runs import assert_same_weights, fit, load


def test_snapshots_best_k_and_resume_from_a_snapshot(tmp_path):
    root = tmp_path / "run"
    # batch 256: a snapshot every 2 generator steps (0.512 kimg); scores at steps 2, 4, ..., 10
    fit(root, "--model.init_args.max_generator_steps=10", "--trainer.callbacks+=callbacks.RunCheckpoint",
        "--trainer.callbacks.snapshot_every_kimg=0.512", "--trainer.callbacks.best_k=2",
        "--trainer.callbacks+=fault_injection.LogScores", "--trainer.callbacks.scores=[5.0,3.0,4.0,1.0,2.0]")
    folder = root / "checkpoints"
    snapshots = sorted(p.name for p in folder.glob("snapshot-*.ckpt"))
    assert len(snapshots) == 5
    steps = [load(folder / name)["gan"]["generator_steps"] for name in snapshots]
    assert steps == [2, 4, 6, 8, 10]
    best = sorted(folder.glob("best-fid-*.ckpt"))
    assert [p.name.split("-")[2] for p in best] == ["1.0000", "2.0000"]  # the worse ones were deleted
    assert sorted(load(p)["gan"]["generator_steps"] for p in best) == [8, 10]
    assert load(folder / "last.ckpt")["gan"]["generator_steps"] == 10

    # resume from the step-4 snapshot (in the middle of epoch 0) to 10: the same weights as the run
    other = tmp_path / "from_snapshot"
    fit(other, "--model.init_args.max_generator_steps=10", f"--ckpt_path={folder / snapshots[1]}")
    assert_same_weights(load(folder / "last.ckpt"), load(other / "checkpoints" / "last.ckpt"))


def test_time_based_checkpoints_land_mid_run(tmp_path):
    from conftest import make_trainer, toy_data, toy_gan

    from callbacks import RunCheckpoint

    model = toy_gan(max_generator_steps=20)
    trainer = make_trainer(tmp_path, enable_checkpointing=True,
                           callbacks=[RunCheckpoint(every_n_minutes=1e-9, check_every_n_batches=3)])
    saved, save = [], trainer.save_checkpoint
    trainer.save_checkpoint = lambda path, *a, **k: (saved.append((Path(path).name, model.generator_steps)),
                                                     save(path, *a, **k))
    trainer.fit(model, toy_data(batch_size=32, num_samples=256))  # 8 batches an epoch
    # the time is always up: a write on every checked batch (batch_idx 0, 3, 6 of each epoch), then the stop
    assert saved == [("last.ckpt", s) for s in (1, 4, 7, 9, 12, 15, 17, 20)]
