"""Multi-node launch of ``configs/trainer/ddp_multinode.yaml`` on one machine: 2 "nodes" of 1 CPU process.

Two launchers are exercised, as a cluster would use them, with the rendezvous on the loopback address:

* ``torchrun --nnodes 2 --node_rank {0,1}`` (Lightning reads ``TorchElasticEnvironment``);
* SLURM's ``srun`` environment (``SLURM_NTASKS``, ``SLURM_PROCID``, ``SLURM_NODEID``, ...), set by
  hand for two processes, as ``srun`` would set it (Lightning reads ``SLURMEnvironment``).

Both must train with the GAN-aware strategy over 2 processes (images counted over both ranks, one
RNG state per rank in the checkpoint, written once) and end with the same weights: the data order
and the per-rank random streams depend on ranks, not on the launcher.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
FRAGMENT = ROOT / "configs" / "trainer" / "ddp_multinode.yaml"
STEPS, BATCH = 3, 16


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train_args(root: Path) -> list[str]:
    # the fragment as written, with its GPU-only settings turned into their CPU counterparts
    return ["fit", "--config", str(ROOT / "configs" / "gan_mlp_toy_ring.yaml"), "--config", str(FRAGMENT),
            "--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.precision=32-true",
            f"--trainer.default_root_dir={root}", "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false", "--trainer.check_val_every_n_epoch=1000",
            "--trainer.callbacks=[]", f"--data.init_args.batch_size={BATCH}",
            f"--model.init_args.max_generator_steps={STEPS}"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "MASTER_", "TORCHELASTIC", "RANK",
                                                                     "LOCAL_RANK", "WORLD_SIZE", "GROUP_RANK"))}
    return {**env, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}


def _wait(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-4000:]


def _check(root: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["gan"]["generator_steps"] == STEPS
    assert ckpt["gan"]["images_seen"] == STEPS * 2 * BATCH  # both nodes' images
    assert len(ckpt["gan"]["rng_per_rank"]) == 2
    assert sorted(p.name for p in (root / "checkpoints").iterdir()) == ["last.ckpt"]
    return ckpt["state_dict"]


def test_torchrun_two_nodes_and_slurm_two_nodes_train_the_same(tmp_path):
    port = _free_port()
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
                "--master_addr", "127.0.0.1", "--master_port", str(port)]
    procs = [subprocess.Popen([*torchrun, "--node_rank", str(node), str(ROOT / "train.py"),
                               *_train_args(tmp_path / "torchrun")],
                              cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for node in (0, 1)]
    _wait(procs)
    by_torchrun = _check(tmp_path / "torchrun")

    port = _free_port()
    procs = []
    for rank in (0, 1):
        slurm = {"SLURM_NTASKS": "2", "SLURM_NNODES": "2", "SLURM_NTASKS_PER_NODE": "1", "SLURM_PROCID": str(rank),
                 "SLURM_LOCALID": "0", "SLURM_NODEID": str(rank), "SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "gan",
                 "SLURM_NODELIST": "127.0.0.1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        procs.append(subprocess.Popen([sys.executable, str(ROOT / "train.py"), *_train_args(tmp_path / "slurm")],
                                      cwd=ROOT, env={**_env(), **slurm}, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    _wait(procs)
    by_slurm = _check(tmp_path / "slurm")

    assert by_torchrun.keys() == by_slurm.keys()
    for key, value in by_torchrun.items():
        torch.testing.assert_close(by_slurm[key], value, rtol=0, atol=0, msg=key)
