"""Mode coverage of a Gaussian-mixture toy target (ring / grid), the VEEGAN / PacGAN protocol.

Srivastava, Valkov, Russell, Gutmann & Sutton, "VEEGAN: Reducing Mode Collapse in GANs using Implicit
Variational Learning", NeurIPS 2017 (synthetic experiments), and Lin, Khetan, Fanti & Oh, "PacGAN: The
power of two samples in generative adversarial networks", NeurIPS 2018 (2D ring / grid experiments):

* each sample is assigned to its nearest mode (Euclidean distance to the mode centres);
* it is *high quality* if that distance is below ``threshold * std`` (three standard deviations);
* a mode is *captured* when at least one high-quality sample is assigned to it: VEEGAN counts the
  mixture components that are the nearest mode of at least one high-quality sample, PacGAN reuses
  these metrics, and its authors' evaluation code counts the modes with a non-zero number of high-quality
  samples. That is the rule implemented here (some later papers instead require e.g. 20 samples per
  mode, which this function does not do);
* reverse KL is ``KL(q || p)`` between the histogram ``q`` of the high-quality samples over the modes
  (normalised by the number of high-quality samples) and the uniform target ``p = 1/K``.

The mixture is assumed isotropic with one ``std`` for all modes, as in the ring and grid benchmarks.

Checked against the PacGAN authors' evaluation code (github.com/fjxmlzn/PacGAN,
``synthetic_data_experiments/PacGAN/pacgan/extensions.py``, ``MetricLogger``): they assign each sample
to the mode minimising ``sqrt(sum((x - mu)**2 / var))`` (the Euclidean distance over ``std`` for an
isotropic mixture), count it when that is ``< 3`` (strict), report the number of non-empty bins and the
fraction of counted samples, and log the entropy ``H`` of the counted samples' histogram, of which the
reverse KL to the uniform target is ``log K - H``: the same histogram as here, so low-quality samples
take no part in the reverse KL. ``tests/test_metric_math.py`` compares with a loop written that way.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def assign_to_modes(samples: Tensor, modes: Tensor) -> tuple[Tensor, Tensor]:
    """Nearest mode of each sample and the distance to it.

    Args:
        samples: ``[N, D]`` points (``D = 2`` for the usual toy targets).
        modes: ``[K, D]`` mode centres.

    Returns:
        ``(index, distance)``: ``[N]`` int64 index of the nearest mode (lowest index on ties) and ``[N]``
        float64 Euclidean distance to it.
    """
    dist = torch.cdist(samples.to(torch.float64), modes.to(device=samples.device, dtype=torch.float64))
    distance, index = dist.min(dim=1)
    return index, distance


def mode_coverage(samples: Tensor, modes: Tensor, std: float, threshold: float = 3.0) -> dict[str, float]:
    """Modes captured, fraction of high-quality samples and reverse KL to the uniform mode distribution.

    Args:
        samples: ``[N, 2]`` generated points, ``N >= 1``.
        modes: ``[K, 2]`` centres of the target's mixture components.
        std: standard deviation of each (isotropic) component.
        threshold: a sample is high quality when its distance to the nearest mode is strictly less than
            ``threshold * std`` (3 in VEEGAN and PacGAN).

    Returns:
        ``{"modes": number of modes with at least one high-quality sample (0..K, as float),
        "high_quality": fraction of samples that are high quality (0..1),
        "reverse_kl": sum_k q_k log(q_k K) over modes with q_k > 0 (0 for a uniform spread, log K when
        all high-quality samples sit on one mode; NaN when there is no high-quality sample, as q is
        then undefined)}``.
    """
    samples, modes = torch.as_tensor(samples), torch.as_tensor(modes)
    if samples.ndim != 2 or modes.ndim != 2 or samples.shape[1] != modes.shape[1]:
        raise ValueError(f"samples [N, D] and modes [K, D] expected, got {tuple(samples.shape)}, {tuple(modes.shape)}")
    if samples.shape[0] == 0 or modes.shape[0] == 0:
        raise ValueError("need at least one sample and one mode")
    num_modes = modes.shape[0]
    index, distance = assign_to_modes(samples, modes)
    good = distance < threshold * std
    counts = torch.bincount(index[good], minlength=num_modes).to(torch.float64)
    num_good = float(counts.sum())
    if num_good == 0:
        reverse_kl = math.nan
    else:
        q = counts[counts > 0] / num_good
        reverse_kl = float((q * torch.log(q * num_modes)).sum())
    return {"modes": float((counts > 0).sum()),
            "high_quality": num_good / samples.shape[0],
            "reverse_kl": reverse_kl}
