"""High-frequency energy of images: the share of their power spectrum at the highest spatial frequencies.

A transposed convolution whose kernel size is not a multiple of its stride overlaps its outputs unevenly
and paints a checkerboard (Odena et al. 2016, "Deconvolution and Checkerboard Artifacts"): power at and
near the Nyquist frequency that real images do not have. This metric measures it directly on pixels.

For images ``x [N, C, H, W]`` the power spectrum of each channel is ``|FFT2(x)|^2`` (unnormalised, so by
Parseval it sums to ``H W`` times the image's energy ``sum x^2``), summed over the channels and averaged over
the images. Each frequency ``(f_y, f_x)`` (``torch.fft.fftfreq``, cycles per pixel in ``[-1/2, 1/2)``) has
the radial frequency ``r = sqrt(f_y^2 + f_x^2) / (1/2)`` in units of the Nyquist frequency (up to
``sqrt(2)`` at the corners). The high-frequency share is the mean spectrum's power at ``r > cutoff``
divided by its total power, in ``[0, 1]``: 0 for a constant image (all power at ``r = 0``), 1 for the
pure Nyquist pattern ``(-1)^(x + y)``. The mean (DC) component is included, so the share is that of the
images' energy, black background included. ``GenerativeMetrics`` reports the share of the generated
images, of the real images, and their ratio (``hf_energy``: above 1 means more high-frequency energy
than the data).

The accumulator keeps float64 sums only (the summed spectrum and the image count), so batches and
processes combine by a sum into exactly the one-pass value (up to the order of float64 additions).
"""

from __future__ import annotations

import torch
from torch import Tensor

DEFAULT_CUTOFF = 0.75


def radial_frequency(height: int, width: int, device: torch.device | str = "cpu") -> Tensor:
    """``[H, W]`` radial frequency of each FFT bin in units of the Nyquist frequency (0 at DC, 1 at Nyquist)."""
    fy = torch.fft.fftfreq(height, device=device, dtype=torch.float64)
    fx = torch.fft.fftfreq(width, device=device, dtype=torch.float64)
    return torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) / 0.5


def power_spectrum_sum(images: Tensor) -> Tensor:
    """``[H, W]`` float64: ``|FFT2|^2`` of ``images [N, C, H, W]`` summed over the images and channels."""
    if images.ndim != 4:
        raise ValueError(f"power spectrum: images must be [N, C, H, W], got shape {tuple(images.shape)}")
    return torch.fft.fft2(images.to(torch.float64)).abs().square().sum(dim=(0, 1))


def high_frequency_share_of(spectrum: Tensor, cutoff: float = DEFAULT_CUTOFF) -> float:
    """The share of a ``[H, W]`` power spectrum at radial frequency ``> cutoff`` (0 for an all-zero spectrum)."""
    total = float(spectrum.sum())
    if total == 0.0:
        return 0.0
    mask = radial_frequency(*spectrum.shape, device=spectrum.device) > cutoff
    return float(spectrum[mask].sum()) / total


def high_frequency_share(images: Tensor, cutoff: float = DEFAULT_CUTOFF) -> float:
    """The high-frequency share of the mean power spectrum of ``images [N, C, H, W]`` (any range)."""
    return high_frequency_share_of(power_spectrum_sum(images), cutoff)


class SpectrumAccumulator:
    """Running float64 sum of the power spectra of image batches and their count (streamed, DDP-summable).

    Args:
        cutoff: radial frequency, in units of Nyquist, above which power counts as high-frequency.
        device: where the sums live.
    """

    def __init__(self, cutoff: float = DEFAULT_CUTOFF, device: torch.device | str = "cpu") -> None:
        if not 0.0 <= cutoff < 2 ** 0.5:
            raise ValueError(f"hf_energy cutoff must be in [0, sqrt(2)) (units of Nyquist), got {cutoff}")
        self.cutoff, self.device = cutoff, device
        self.count = torch.zeros((), dtype=torch.float64, device=device)
        self.spectrum: Tensor | None = None

    def allocate(self, height: int, width: int) -> None:
        """Creates the ``[H, W]`` sum (idempotent; a process that saw no batch calls it before a reduce)."""
        if self.spectrum is None:
            self.spectrum = torch.zeros(height, width, dtype=torch.float64, device=self.device)

    def update(self, images: Tensor) -> None:
        """Adds images ``[n, C, H, W]``."""
        self.allocate(*images.shape[-2:])
        if tuple(images.shape[-2:]) != tuple(self.spectrum.shape):
            raise ValueError(f"images of size {tuple(images.shape[-2:])} after {tuple(self.spectrum.shape)}")
        self.spectrum += power_spectrum_sum(images).to(self.device)
        self.count += images.shape[0]

    def tensors(self) -> list[Tensor]:
        """The state, for an all-reduce by sum."""
        return [self.count, self.spectrum]

    def share(self) -> float:
        """The high-frequency share of the mean spectrum so far."""
        if self.spectrum is None:
            raise ValueError("no images were added to the spectrum")
        return high_frequency_share_of(self.spectrum, self.cutoff)


def hf_energy(fake_share: float, real_share: float) -> dict[str, float]:
    """The reported values: ``hf_energy`` (generated / real share), ``hf_energy_fake``, ``hf_energy_real``."""
    ratio = fake_share / real_share if real_share > 0 else float("inf") if fake_share > 0 else 1.0
    return {"hf_energy": ratio, "hf_energy_fake": fake_share, "hf_energy_real": real_share}
