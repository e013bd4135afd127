"""The Inception-v3 of the reference FID/IS code (TensorFlow graph ``inception-2015-12-05``), in PyTorch.

FID (Heusel et al., NeurIPS 2017), KID (Binkowski et al., ICLR 2018) and the Inception Score
(Salimans et al., NeurIPS 2016) are only comparable with published numbers when computed with this
exact network. It is not torchvision's ImageNet Inception-v3: besides different weights (1008 classes:
0 is "background", 1001..1007 are unused) the TF graph differs in two places, found by reading
pytorch-fid's ``inception.py`` (https://github.com/mseitzer/pytorch-fid) and torch-fidelity's
``feature_extractor_inceptionv3.py`` (https://github.com/toshas/torch-fidelity); the code here is our own:

* every average pool inside the Inception blocks ignores the zero padding (``count_include_pad=False``);
* the pool branch of the last block (``Mixed_7c``) is a max pool, not an average pool.

Weights are the PyTorch port ``pt_inception-2015-12-05-6726825d.pth`` of pytorch-fid (torch-fidelity's
``weights-inception-2015-12-05-6726825d.pth`` has the same keys and is accepted too). Nothing is
downloaded: pass ``weights_path`` or place the file in ``torch.hub.get_dir()/checkpoints``.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn
from torchvision.models.inception import InceptionA, InceptionC, InceptionE

WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
TORCH_FIDELITY_FILENAME = "weights-inception-2015-12-05-6726825d.pth"
INPUT_SIZE = 299
RESIZE_MODES = ("tf1", "pytorch_fid", "torchmetrics")
LOGITS_MODES = ("unbiased", "imagenet")
# Children of torchvision's Inception3 that carry the computation (the pool/dropout ones have no state).
_LAYERS = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
           "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
           "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c")


def _avg_pool_no_pad(x: Tensor) -> Tensor:
    """3x3 stride-1 average pool that, like TF's ``AvgPool`` with SAME padding, averages real pixels only."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class _TFInceptionA(InceptionA):
    """``Mixed_5b..5d``: torchvision's block with TF's padding-free average pool."""

    def forward(self, x: Tensor) -> Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_avg_pool_no_pad(x))], 1)


class _TFInceptionC(InceptionC):
    """``Mixed_6b..6e``: torchvision's block with TF's padding-free average pool."""

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b7dbl = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            b7dbl = layer(b7dbl)
        return torch.cat([self.branch1x1(x), b7, b7dbl, self.branch_pool(_avg_pool_no_pad(x))], 1)


class _TFInceptionE(InceptionE):
    """``Mixed_7b`` (padding-free average pool) or, with ``max_pool=True``, ``Mixed_7c`` (3x3 max pool)."""

    def __init__(self, in_channels: int, max_pool: bool) -> None:
        super().__init__(in_channels)
        self.max_pool = max_pool

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool_no_pad(x)
        return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(pooled)], 1)


def resize_tf1(x: Tensor, size: int) -> Tensor:
    """Bilinear resize as TF1's ``ResizeBilinear(align_corners=False)`` (legacy, no half-pixel centres).

    Output pixel ``i`` samples the input at ``i * in_size / size`` (not ``(i + 0.5) * in_size / size - 0.5``
    as ``F.interpolate(align_corners=False)`` does), clamping the upper neighbour at the border. This is
    what torch-fidelity (and torchmetrics with ``antialias=False``) emulates.

    Args:
        x: ``[N, C, H, W]`` float.
        size: output side length.

    Returns:
        ``[N, C, size, size]`` of ``x``'s dtype.
    """

    def along(t: Tensor, dim: int) -> Tensor:
        n_in = t.shape[dim]
        src = torch.arange(size, device=t.device, dtype=torch.float64) * (n_in / size)
        lo = src.floor().long().clamp_max(n_in - 1)
        hi = (lo + 1).clamp_max(n_in - 1)
        shape = [1] * t.dim()
        shape[dim] = size
        frac = (src - lo).to(t.dtype).view(shape)
        a, b = t.index_select(dim, lo), t.index_select(dim, hi)
        return a + (b - a) * frac

    return along(along(x, 2), 3)


class FIDInceptionV3(nn.Module):
    """Frozen FID Inception-v3 mapping images to pool3 features (FID/KID) and logits (IS).

    Preprocessing (all in float32 with autocast disabled, so features do not depend on AMP settings):

    1. quantise as a saved PNG would be: ``u = clamp(floor((x + 1) * 127.5 + 0.5), 0, 255)`` (round half
       up, like ``torchvision.utils.save_image`` and ``callbacks.images.to_uint8``), so ``x`` and
       ``x + 1e-4`` give identical features and in-memory samples embed exactly as their saved PNGs;
    2. grayscale (``C = 1``) is replicated to RGB;
    3. resize to 299x299 and map to the network's range, by ``resize`` mode (each the exact convention
       of one reference tool; FIDs from different modes differ by about 1% and must not be compared):

       * ``"tf1"`` (default; the published numbers): TF1's legacy ``ResizeBilinear`` (:func:`resize_tf1`)
         and ``(u - 128) / 128``, the TF graph's ``Sub``/``Mul`` nodes, as torch-fidelity does;
       * ``"pytorch_fid"``: ``F.interpolate(mode="bilinear", align_corners=False)`` (half-pixel centres,
         no antialias) and ``2 u / 255 - 1``, as pytorch-fid's ``InceptionV3`` does on ``u / 255``;
       * ``"torchmetrics"``: the antialiased ``F.interpolate`` of torchmetrics' default FID and ``(u - 128) / 128``.

       The resize is skipped at 299x299 in ``"tf1"`` and ``"torchmetrics"`` modes (both are the identity
       there), and is the identity in ``"pytorch_fid"`` mode.

    Logits: with ``logits="unbiased"`` (default) the 1008 values ``pool3 @ W.T`` without the fc bias,
    which is exactly what the reference IS code (openai/improved-gan ``inception_score/model.py``: it
    multiplies pool3 by ``softmax/logits/MatMul``'s weight and softmaxes all 1008) and torch-fidelity's /
    torchmetrics' ``logits_unbiased`` use: feed them to softmax unchanged for published-comparable IS.
    ``logits="imagenet"`` gives the biased fc output sliced to the 1000 ImageNet classes
    (``[:, 1:1001]``) for class histograms.

    Args:
        weights_path: the ``.pth`` state dict; ``None`` searches ``torch.hub.get_dir()/checkpoints``
            (``$TORCH_HOME/hub/checkpoints``) for pytorch-fid's and torch-fidelity's file names.
        resize: ``"tf1"``, ``"pytorch_fid"`` or ``"torchmetrics"`` (see above); recorded as ``preprocessing``
            in cached and exported statistics.
        logits: ``"unbiased"`` (K = 1008) or ``"imagenet"`` (K = 1000).

    Attributes:
        feature_dim: 2048.
        num_classes: K, 1008 or 1000.
        preprocessing: the ``resize`` mode.
        cache_id: ``"inception2015-<resize>[-imagenet]-" + sha256(weights)[:12]``, a key for cached
            real-data statistics.

    Raises:
        FileNotFoundError: no weights file (the message names the file, the paths searched and the option).
    """

    feature_dim: int = 2048

    def __init__(self, weights_path: str | None = None, resize: str = "tf1", logits: str = "unbiased") -> None:
        super().__init__()
        if resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
        if logits not in LOGITS_MODES:
            raise ValueError(f"logits must be one of {LOGITS_MODES}, got {logits!r}")
        self.resize = self.preprocessing = resize
        self.logits_mode = logits
        self.num_classes = 1008 if logits == "unbiased" else 1000
        path = self.find_weights(weights_path)
        self._build()
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.load_state_dict(self._map_keys(state), strict=True)
        suffix = "" if logits == "unbiased" else f"-{logits}"
        self.cache_id = f"inception2015-{resize}{suffix}-{_sha256(path)[:12]}"
        self.weights_path = str(path)
        self.requires_grad_(False)
        self.eval()

    def _build(self) -> None:
        """Registers torchvision's Inception3 layers (patched as the TF graph) directly on ``self``."""
        net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=1008)
        net.Mixed_5b, net.Mixed_5c, net.Mixed_5d = (_TFInceptionA(c, pool_features=p)
                                                    for c, p in ((192, 32), (256, 64), (288, 64)))
        net.Mixed_6b, net.Mixed_6c, net.Mixed_6d, net.Mixed_6e = (_TFInceptionC(768, channels_7x7=c)
                                                                  for c in (128, 160, 160, 192))
        net.Mixed_7b, net.Mixed_7c = _TFInceptionE(1280, max_pool=False), _TFInceptionE(2048, max_pool=True)
        for name in _LAYERS:
            self.add_module(name, getattr(net, name))
        self.fc = net.fc  # Linear(2048, 1008)

    def _map_keys(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """Accepts wrapped / ``module.``-prefixed dicts, drops ``AuxLogits``, fills old BN counters."""
        if "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        state = {k.removeprefix("module."): v for k, v in state.items() if not k.startswith("AuxLogits.")}
        for key in self.state_dict():
            if key.endswith("num_batches_tracked") and key not in state:
                state[key] = torch.tensor(0, dtype=torch.long)
        return state

    @staticmethod
    def find_weights(weights_path: str | None = None) -> Path:
        """The weights file to load: ``weights_path`` or the first existing default location.

        Raises:
            FileNotFoundError: nothing found; the message says where it looked and how to fix it.
        """
        hub = Path(torch.hub.get_dir()) / "checkpoints"
        candidates = [Path(weights_path).expanduser()] if weights_path else [hub / WEIGHTS_FILENAME,
                                                                              hub / TORCH_FIDELITY_FILENAME]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(
            f"FID Inception weights {WEIGHTS_FILENAME} not found (searched: {', '.join(map(str, candidates))}). "
            f"Nothing is downloaded: pass weights_path (set GenerativeMetrics' extractor init_args.weights_path) "
            f"or place the file in {hub} (pytorch-fid's release asset 'fid_weights/{WEIGHTS_FILENAME}')."
        )

    @classmethod
    def save_random_weights(cls, path: str | Path, seed: int = 0) -> Path:
        """Writes a randomly initialised state dict with exactly the real file's keys and shapes.

        For tests and speed benchmarks (cost does not depend on the weights). Convolutions get He-normal
        weights so activations neither vanish nor explode through the ~50 layers.

        Args:
            path: output file (parent folders are created).
            seed: RNG seed; the global RNG state is left untouched.

        Returns:
            ``path`` as a ``Path``.
        """
        model = cls.__new__(cls)
        nn.Module.__init__(model)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model._build()
            for module in model.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), path)
        return path

    def train(self, mode: bool = True) -> FIDInceptionV3:
        """Stays in eval mode whatever ``mode`` is (BatchNorm must use the TF running statistics)."""
        return super().train(False)

    def preprocess(self, images: Tensor) -> Tensor:
        """Steps 1-4 of the class docstring.

        Args:
            images: ``[N, C, H, W]`` float in ``[-1, 1]``, C = 1 or 3, any H, W.

        Returns:
            ``[N, 3, 299, 299]`` float32 in ``[-1, 1]``.
        """
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"images must be [N, 1 or 3, H, W], got shape {tuple(images.shape)}")
        x = ((images.detach().float() + 1.0) * 127.5 + 0.5).floor_().clamp_(0.0, 255.0)
        x = x.expand(-1, 3, -1, -1)
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            if self.resize == "tf1":
                x = resize_tf1(x, INPUT_SIZE)
            else:
                x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False,
                                  antialias=self.resize == "torchmetrics")
        if self.resize == "pytorch_fid":
            return x / 255.0 * 2.0 - 1.0
        return (x - 128.0) / 128.0

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """Pool3 features and logits.

        Args:
            images: ``[N, C, H, W]`` float in ``[-1, 1]``, C = 1 or 3, any H, W.

        Returns:
            ``{"features": [N, 2048] float32 (>= 0), "logits": [N, num_classes] float32}``.
        """
        x = self.preprocess(images)
        no_amp = torch.autocast(x.device.type, enabled=False) if x.device.type in ("cpu", "cuda") \
            else contextlib.nullcontext()
        with no_amp:
            for name in _LAYERS:
                x = getattr(self, name)(x)
            features = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
            if self.logits_mode == "unbiased":
                logits = F.linear(features, self.fc.weight)
            else:
                logits = self.fc(features)[:, 1:1001]
        return {"features": features.float(), "logits": logits.float()}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


save_random_weights = FIDInceptionV3.save_random_weights
