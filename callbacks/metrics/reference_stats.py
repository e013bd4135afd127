"""FID reference statistics as ``.npz`` files in pytorch-fid's format (``mu``, ``sigma``), plus provenance.

pytorch-fid (https://github.com/mseitzer/pytorch-fid, ``--save-stats``) writes ``numpy.savez(path,
mu=mu, sigma=sigma)``; so do the TF FID code's precomputed statistics. Files written here add
``num_samples`` and ``preprocessing`` (the Inception ``resize`` mode, see
:class:`~callbacks.metrics.inception.FIDInceptionV3`), so that statistics made with different
preprocessing are refused instead of silently compared. A file without ``preprocessing`` (pytorch-fid's
own) is accepted with a warning that the mode cannot be checked.
"""

from __future__ import annotations

import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor


@dataclass
class ReferenceStatistics:
    """Mean ``[d]`` and covariance ``[d, d]`` (float64) with what made them (``None`` when unknown)."""

    mu: Tensor
    sigma: Tensor
    num_samples: int | None = None
    preprocessing: str | None = None


def save_reference_statistics(path: str | Path, mu: Tensor, sigma: Tensor, num_samples: int | None = None,
                              preprocessing: str | None = None) -> Path:
    """Writes ``mu``/``sigma`` (pytorch-fid's keys, float64) and the provenance fields that are known.

    Returns:
        ``path`` as a ``Path`` (parent folders created).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    extra: dict[str, np.ndarray] = {}
    if num_samples is not None:
        extra["num_samples"] = np.asarray(num_samples, dtype=np.int64)
    if preprocessing is not None:
        extra["preprocessing"] = np.asarray(preprocessing)
    with open(path, "wb") as f:  # a file handle: numpy would append ".npz" to a name without it
        np.savez(f, mu=torch.as_tensor(mu).double().cpu().numpy(),
                 sigma=torch.as_tensor(sigma).double().cpu().numpy(), **extra)
    return path


def load_reference_statistics(path: str | Path, feature_dim: int | None = None,
                              preprocessing: str | None = None) -> ReferenceStatistics:
    """Reads and checks a statistics ``.npz``.

    Args:
        path: the file.
        feature_dim: the extractor's feature size ``d``; a file of another size is refused.
        preprocessing: the extractor's preprocessing mode (``FIDInceptionV3.preprocessing``), or ``None``
            for an extractor without one; a file that records a different mode is refused.

    Raises:
        FileNotFoundError, ValueError: each naming the file and what is wrong with it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"reference statistics file '{path}' does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            fields = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"reference statistics file '{path}' is not a readable .npz ({error})") from error
    missing = [key for key in ("mu", "sigma") if key not in fields]
    if missing:
        raise ValueError(f"reference statistics file '{path}' has no {' or '.join(missing)} "
                         f"(keys: {', '.join(fields) or 'none'}); expected pytorch-fid's format, mu [d] and sigma [d, d]")
    mu, sigma = torch.from_numpy(fields["mu"].astype(np.float64)), torch.from_numpy(fields["sigma"].astype(np.float64))
    d = mu.shape[0] if mu.ndim == 1 else -1
    if mu.ndim != 1 or tuple(sigma.shape) != (d, d):
        raise ValueError(f"reference statistics file '{path}': mu must be [d] and sigma [d, d], "
                         f"got {tuple(mu.shape)} and {tuple(sigma.shape)}")
    if feature_dim is not None and d != feature_dim:
        raise ValueError(f"reference statistics file '{path}' holds {d}-dimensional features but the extractor "
                         f"makes {feature_dim}: they come from another feature extractor")
    recorded = str(fields["preprocessing"]) if "preprocessing" in fields else None
    if recorded is not None and preprocessing is not None and recorded != preprocessing:
        raise ValueError(f"reference statistics file '{path}' was made with preprocessing '{recorded}' but the "
                         f"extractor uses '{preprocessing}': FIDs across preprocessing modes are not comparable "
                         f"(set the extractor's resize to '{recorded}' or recompute the statistics)")
    if recorded is None and preprocessing is not None:
        warnings.warn(f"reference statistics file '{path}' does not record its preprocessing; assuming it matches "
                      f"the extractor's '{preprocessing}' (pytorch-fid's own files are 'pytorch_fid')",
                      UserWarning, stacklevel=2)
    count = int(fields["num_samples"]) if "num_samples" in fields else None
    return ReferenceStatistics(mu, sigma, count, recorded)
