"""GAN-aware data parallelism: each player's gradients reduced in one flat bucket before its step.

Why not ``DistributedDataParallel``: DDP wraps the whole LightningModule and expects every parameter
that requires a gradient to receive one in each backward. A GAN's discriminator step sees
``G(z).detach()`` and its generator step leaves D's parameters frozen, so plain ``strategy="ddp"``
fails with "parameters that were not used in producing the loss". The usual workaround,
``ddp_find_unused_parameters_true``, traverses the autograd graph after every backward and
all-reduces both players' gradient buckets on every step (twice the bytes a step needs; see
``benchmarks/ddp.py`` and docs/performance.md).

:class:`GANDDPStrategy` keeps Lightning's process launching, process groups, samplers and
checkpointing, but does not wrap the module. Instead:

* at the start of fit it broadcasts parameters and buffers from rank 0 (as DDP's constructor does);
* :meth:`GANModule._optimize <gan_modules.base.GANModule._optimize>` calls :meth:`reduce_gradients`
  between the backward and the optimizer step, which averages the gradients of that optimizer's
  parameters across processes in one flattened all-reduce (one message per player step). Gradient
  penalties (WGAN-GP, R1, R2) are ordinary terms of the loss by then, double backward included;
* before each training step it broadcasts the module's floating buffers (BatchNorm statistics)
  from rank 0, as DDP's ``broadcast_buffers=True`` does, so every rank keeps identical state.

Requirement: on a given step every rank computes gradients for the same set of parameters (true
for any family whose graph does not depend on the data, which is every family here). A parameter
without a gradient on all ranks (an inactive progressive-growing layer) is left without one.

``train.py`` puts this strategy in place when a config or the command line says ``strategy: ddp``;
in Python pass ``Trainer(strategy=GANDDPStrategy())``. ``ddp_find_unused_parameters_true`` still
works (the module then leaves gradient reduction to DDP).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from lightning.pytorch.overrides.distributed import _sync_module_states
from lightning.pytorch.strategies import DDPStrategy
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors


class GANDDPStrategy(DDPStrategy):
    """Multi-process data parallelism for GANs without ``find_unused_parameters``.

    Args:
        process_group_backend: ``"nccl"`` or ``"gloo"``; None picks nccl on GPUs and gloo on CPU.
        timeout: timeout of collective operations.
        start_method: ``"popen"`` (re-runs the script per process, as ``torchrun`` does), ``"spawn"``
            or ``"fork"``.
        broadcast_buffers: broadcast rank 0's buffers before each training step (DDP's default).
    """

    strategy_name = "gan_ddp"

    def __init__(
        self,
        process_group_backend: str | None = None,
        timeout: timedelta | None = None,
        start_method: str = "popen",
        broadcast_buffers: bool = True,
    ) -> None:
        kwargs: dict[str, Any] = {"process_group_backend": process_group_backend, "start_method": start_method}
        if timeout is not None:
            kwargs["timeout"] = timeout
        super().__init__(**kwargs)
        self.broadcast_buffers = broadcast_buffers

    def configure_ddp(self) -> None:
        # No DistributedDataParallel wrapper: the module reduces each player's gradients itself.
        assert self.model is not None
        _sync_module_states(self.model)

    @property
    def distributed(self) -> bool:
        return dist.is_available() and dist.is_initialized() and self.world_size > 1

    def reduce_gradients(self, parameters: list[torch.Tensor]) -> None:
        """Averages the gradients of ``parameters`` over processes, in place, in one flat all-reduce."""
        if not self.distributed:
            return
        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return
        for dtype in {g.dtype for g in grads}:  # one bucket per dtype (a single one in practice)
            group = [g for g in grads if g.dtype == dtype]
            flat = _flatten_dense_tensors(group)
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
            flat.div_(self.world_size)
            for grad, reduced in zip(group, _unflatten_dense_tensors(flat, group), strict=True):
                grad.copy_(reduced)

    def sync_buffers(self, module: torch.nn.Module) -> None:
        """Broadcasts rank 0's floating-point buffers (BatchNorm statistics) to every rank."""
        if not self.distributed:
            return
        buffers = [b for b in module.buffers() if b.is_floating_point()]
        for dtype in {b.dtype for b in buffers}:
            group = [b for b in buffers if b.dtype == dtype]
            flat = _flatten_dense_tensors(group)
            dist.broadcast(flat, src=0)
            for buffer, synced in zip(group, _unflatten_dense_tensors(flat, group), strict=True):
                buffer.copy_(synced)

    def training_step(self, *args: Any, **kwargs: Any) -> Any:
        if self.broadcast_buffers:
            assert self.lightning_module is not None
            self.sync_buffers(self.lightning_module)
        return super().training_step(*args, **kwargs)
