"""Learning-rate schedules as pure functions of the step (or epoch), with a scheduler class for YAML.

pix2pix and CycleGAN keep the learning rate constant for ``constant`` epochs, then decay it linearly to
zero over ``decay`` epochs (100 + 100 for facades, horse2zebra). In YAML::

    g_scheduler:
      class_path: gan_modules.schedules.LinearDecayLR
      init_args: {constant: 100, decay: 100}
    scheduler_interval: epoch

With ``scheduler_interval: step`` the same numbers count optimizer steps of that player instead.
"""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


def linear_decay(t: int, constant: int, decay: int) -> float:
    """The LR factor after ``t`` scheduler steps: 1 for ``t < constant``, then linearly down to 0.

    The CycleGAN/pix2pix reference formula ``1 - max(0, t + 1 - constant) / (decay + 1)``: the factor
    is 1 through ``t = constant - 1``, ``1 - 1/(decay + 1)`` at ``t = constant`` and reaches 0 at
    ``t = constant + decay``, where training ends (it stays 0 after).
    """
    if constant < 0 or decay < 0:
        raise ValueError(f"constant and decay must be >= 0, got {constant} and {decay}")
    return max(0.0, 1.0 - max(0, t + 1 - constant) / float(decay + 1))


class LinearDecayLR(LRScheduler):
    """``lr = base_lr * linear_decay(last_epoch, constant, decay)`` (see :func:`linear_decay`).

    A closed form of the scheduler's own counter, so the state is just that counter (saved in
    checkpoints with the rest of the scheduler's ``__dict__``) and a resumed run continues exactly.

    Args:
        optimizer: the optimizer whose learning rates are scheduled.
        constant: scheduler steps (epochs or optimizer steps) at the initial learning rate.
        decay: scheduler steps over which the learning rate falls linearly to zero.
        last_epoch: index of the last step taken (-1 to start afresh), as in every torch scheduler.
    """

    def __init__(self, optimizer: Optimizer, constant: int = 100, decay: int = 100, last_epoch: int = -1) -> None:
        linear_decay(0, constant, decay)  # validates the arguments before the base class steps once
        self.constant, self.decay = int(constant), int(decay)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        factor = linear_decay(self.last_epoch, self.constant, self.decay)
        return [base_lr * factor for base_lr in self.base_lrs]
