"""Mixed precision, compile and preemption on CPU (issue 4); DDP lives in test_ddp.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import digits_data, digits_gan, make_trainer, toy_data, toy_gan
from lightning.pytorch.plugins.precision import MixedPrecision

import train
from callbacks import Preemption
from gan_modules.regularizers import gradient_penalty, r1_penalty

ROOT = Path(__file__).resolve().parents[1]


class GradNorms(L.Callback):
    """Records each optimizer's gradient norm as the optimizer sees it (after unscaling)."""

    def __init__(self) -> None:
        self.norms: list[float] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        self.norms.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())


def _fp16_plugin(init_scale: float = 1024.0) -> MixedPrecision:
    # Lightning creates no gradient scaler for "16-mixed" on CPU; a CPU GradScaler runs the same code path
    return MixedPrecision("16-mixed", device="cpu", scaler=torch.amp.GradScaler("cpu", init_scale=init_scale))


def test_bf16_mixed_trains_with_r1_and_gp(tmp_path):
    for kwargs in ({"r1_gamma": 1.0, "r2_gamma": 1.0, "loss": "rpgan"}, {"gp_weight": 10.0, "loss": "wasserstein"}):
        model = digits_gan(max_generator_steps=2, **kwargs)
        before = [p.detach().clone() for p in model.parameters()]
        make_trainer(tmp_path, precision="bf16-mixed").fit(model, digits_data(batch_size=8))
        assert model.generator_steps == 2
        after = list(model.parameters())
        assert all(torch.isfinite(p).all() for p in after)
        assert all(not torch.equal(a, b) for a, b in zip(before, after, strict=True) if a.numel() > 1)


def test_fp16_clipping_sees_unscaled_gradients(tmp_path):
    """The clip threshold applies to the true gradients, not to the loss-scaled ones."""
    recorder = GradNorms()
    model = toy_gan(r1_gamma=1.0, gradient_clip_val=0.01, max_generator_steps=3)
    make_trainer(tmp_path, plugins=[_fp16_plugin()], callbacks=[recorder]).fit(model, toy_data())
    assert len(recorder.norms) == 6
    # clipped to 0.01 (the raw norms are larger); clipping the scaled gradients would give 0.01 / 1024
    assert all(n == pytest.approx(0.01, rel=1e-3) for n in recorder.norms)
    assert {i: int(n) for i, n in model._amp_skipped.items()} == {0: 0, 1: 0}


def test_fp16_inf_skips_only_that_players_step_and_is_counted(tmp_path):
    class InfOnce(type(toy_gan())):
        def discriminator_loss(self, batch, reg_weight):
            out = super().discriminator_loss(batch, reg_weight)
            if self.discriminator_steps == 1:  # the second D step gets an inf gradient
                out["loss"] = out["loss"] * float("inf")
            return out

    torch.manual_seed(0)
    from gan_modules.nets import MLPDiscriminator, MLPGenerator
    model = InfOnce(MLPGenerator((2,), latent_dim=2, hidden_dim=16), MLPDiscriminator((2,), hidden_dim=16),
                    max_generator_steps=2)
    snapshots = []

    class Snap(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            snapshots.append([p.detach().clone() for p in pl_module.discriminator.parameters()])

    plugin = _fp16_plugin()
    make_trainer(tmp_path, plugins=[plugin], callbacks=[Snap()]).fit(model, toy_data())
    d_after = [p.detach() for p in model.discriminator.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(snapshots[1], d_after, strict=True))  # D's 2nd step skipped
    assert {i: int(n) for i, n in model._amp_skipped.items()} == {0: 1, 1: 0}  # counted for D only
    assert plugin.scaler.get_scale() == 512.0  # the scale backed off once
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_penalties_with_loss_scale_equal_unscaled():
    torch.manual_seed(0)
    d = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    x = torch.randn(6, 4, requires_grad=True)
    logits = d(x)
    assert r1_penalty(x, logits, scale=65536.0).item() == pytest.approx(r1_penalty(x, logits).item(), rel=1e-6)
    real, fake = torch.randn(6, 4), torch.randn(6, 4)
    gp = [gradient_penalty(d, real, fake, generator=torch.Generator().manual_seed(1), scale=s).item() for s in (1.0, 4096.0)]
    assert gp[0] == pytest.approx(gp[1], rel=1e-6)


def test_penalty_scale_follows_the_scaler(tmp_path):
    seen = []

    class Probe(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append(pl_module.penalty_scale())

    make_trainer(tmp_path, plugins=[_fp16_plugin(256.0)], callbacks=[Probe()]).fit(
        toy_gan(r1_gamma=1.0, max_generator_steps=1), toy_data())
    assert seen == [256.0]
    seen.clear()
    make_trainer(tmp_path, callbacks=[Probe()]).fit(toy_gan(max_generator_steps=1), toy_data())
    assert seen == [1.0]


def test_compile_trains_and_keeps_checkpoint_keys(tmp_path):
    """compile: true compiles G and D in place; R1 steps (double backward) run D eagerly."""
    eager = toy_gan(r1_gamma=1.0, reg_interval=2, max_generator_steps=4)
    L.seed_everything(0)
    make_trainer(tmp_path).fit(eager, toy_data())
    compiled = toy_gan(r1_gamma=1.0, reg_interval=2, max_generator_steps=4, compile=True, compile_backend="aot_eager")
    L.seed_everything(0)
    trainer = make_trainer(tmp_path)
    trainer.fit(compiled, toy_data())
    assert compiled.generator._compiled_call_impl is not None
    assert compiled.state_dict().keys() == eager.state_dict().keys()
    for key, value in eager.state_dict().items():
        torch.testing.assert_close(compiled.state_dict()[key], value, rtol=1e-4, atol=1e-5, msg=key)
    trainer.save_checkpoint(tmp_path / "c.ckpt")
    state = torch.load(tmp_path / "c.ckpt", weights_only=True)["state_dict"]
    assert not any("_orig_mod" in key for key in state)


def test_preemption_callback_rejects_unknown_signal():
    with pytest.raises(ValueError, match="SIGFOO"):
        Preemption(signals=["SIGFOO"])


def _train_py(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), *args]


def test_sigterm_saves_last_and_resume_continues_exactly(tmp_path):
    """SIGTERM mid-epoch: last.ckpt is written at a batch boundary, the process exits 0, and
    --ckpt_path last then ends with the weights of an uninterrupted run."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    common = ["--config", str(ROOT / "configs" / "gan_mlp_toy_ring.yaml"), "--trainer.enable_progress_bar=false",
              "--trainer.enable_model_summary=false", "--trainer.check_val_every_n_epoch=1000",
              "--trainer.callbacks=[]", "--model.init_args.max_generator_steps=400",
              "--data.init_args.batch_size=16"]  # 625 batches an epoch: every stop is mid-epoch
    slow = tmp_path / "slow"
    # Slow each batch a little so that the signal lands mid-run
    proc = subprocess.Popen(_train_py("fit", *common, f"--trainer.default_root_dir={slow}",
                                      "--trainer.callbacks+=slow_callback.Sleep"),
                            cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT / "tests")}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    marker = slow / "started"
    deadline = time.time() + 120
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert marker.exists(), proc.communicate()[1].decode()[-3000:]
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-3000:]
    ckpt = slow / "checkpoints" / "last.ckpt"
    stopped = torch.load(ckpt, weights_only=True)["gan"]["generator_steps"]
    assert 0 < stopped < 400

    # The resume and the uninterrupted reference run in-process (train.main, the script's code path), on
    # 1 thread like the interrupted process, so that the arithmetic is the same to the bit.
    full, threads = tmp_path / "full", torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train.main(["fit", *common, f"--trainer.default_root_dir={slow}", "--ckpt_path=last"])
        train.main(["fit", *common, f"--trainer.default_root_dir={full}"])
    finally:
        torch.set_num_threads(threads)
    resumed = torch.load(ckpt, weights_only=True)
    uninterrupted = torch.load(full / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["gan"]["generator_steps"] == uninterrupted["gan"]["generator_steps"] == 400
    for key, value in uninterrupted["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][key], value, rtol=0, atol=0, msg=key)
