"""Captions as tokens, and the text and image encoders trained to match them.

* :func:`tokenize` and :class:`Vocabulary`: a caption string to word indices ``[L]`` int64, 0 the
  padding and 1 the unknown word; an empty caption or one of only unknown words is an error.
* :class:`TextEncoder`: word embeddings and a bidirectional GRU over the tokens, the two final
  states projected to the sentence embedding ``phi_t [N, embed_dim]``.
* :class:`ImageEncoder`: a small CNN mapping images ``[N, 3, H, W]`` in ``[-1, 1]`` to the same space.

The two are trained together with a symmetric contrastive (InfoNCE) loss on matching image-caption
pairs, as StackGAN's char-CNN-RNN text encoder was trained to match images and captions (Reed et al.
2016, "Learning deep representations of fine-grained visual descriptions"); the training script is
``benchmarks/train_text_encoder.py``. StackGAN keeps the text encoder frozen; the image encoder scores
R-precision. :func:`load_text_image_encoders` reads a file written by :func:`save_text_image_encoders`
(plain data and tensors only: ``torch.load(weights_only=True)``). Torch only, no Lightning.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PAD, UNK = "<pad>", "<unk>"
PACKAGED_ENCODERS = Path(__file__).parent / "weights" / "text_encoder_shapes.pt"
_WORD = re.compile(r"[a-z0-9]+")


def tokenize(caption: str) -> list[str]:
    """Lower-cased words of a caption (letters and digits; punctuation and spaces separate words)."""
    return _WORD.findall(caption.lower())


class Vocabulary:
    """Words to indices and back; index 0 is padding and 1 the unknown word.

    Args:
        words: the known words in index order, starting with ``"<pad>", "<unk>"`` (as :meth:`build`
            makes them and :attr:`words` returns them).
    """

    def __init__(self, words: Sequence[str]) -> None:
        words = list(words)
        if words[:2] != [PAD, UNK] or len(set(words)) != len(words):
            raise ValueError(f"a vocabulary starts with '{PAD}', '{UNK}' and has no repeated word, got {words[:4]}...")
        self.words = words
        self.index = {w: i for i, w in enumerate(words)}

    @classmethod
    def build(cls, captions: Iterable[str]) -> Vocabulary:
        """The vocabulary of every word in ``captions``, sorted (so it depends on the set of words only)."""
        found = sorted({w for c in captions for w in tokenize(c)})
        return cls([PAD, UNK, *found])

    def __len__(self) -> int:
        return len(self.words)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and other.words == self.words

    def encode(self, caption: str, max_length: int) -> tuple[Tensor, int]:
        """A caption's tokens ``[max_length]`` int64 (zero-padded, cut at ``max_length``) and its length.

        Raises:
            ValueError: the caption has no words, or none of them is in the vocabulary.
        """
        words = tokenize(caption)
        if not words:
            raise ValueError(f"caption {caption!r} is empty: it has no words")
        ids = [self.index.get(w, 1) for w in words][:max_length]
        if all(i == 1 for i in ids):
            raise ValueError(f"caption {caption!r} has only words the vocabulary does not know "
                             f"({len(self.words) - 2} words, e.g. {', '.join(self.words[2:8])})")
        tokens = torch.zeros(max_length, dtype=torch.int64)
        tokens[:len(ids)] = torch.tensor(ids, dtype=torch.int64)
        return tokens, len(ids)

    def encode_batch(self, captions: Sequence[str], max_length: int) -> tuple[Tensor, Tensor]:
        """Tokens ``[N, max_length]`` int64 and lengths ``[N]`` int64 of several captions."""
        pairs = [self.encode(c, max_length) for c in captions]
        return torch.stack([t for t, _ in pairs]), torch.tensor([n for _, n in pairs], dtype=torch.int64)

    def decode(self, tokens: Tensor) -> str:
        """The words of tokens ``[L]`` (padding dropped)."""
        return " ".join(self.words[int(i)] for i in tokens if int(i) != 0)


def token_lengths(tokens: Tensor) -> Tensor:
    """Lengths ``[N]`` of zero-padded tokens ``[N, L]`` (padding is 0 and only at the end)."""
    return (tokens != 0).sum(1)


class TextEncoder(nn.Module):
    """Tokens ``[N, L]`` int64 (0 = padding) to sentence embeddings ``[N, embed_dim]``.

    Word embeddings, a bidirectional GRU (the padding packed away), the last forward and backward
    states concatenated and projected linearly.

    Args:
        vocab_size: number of words, padding and unknown included.
        word_dim: word-embedding size.
        hidden_dim: GRU state size per direction.
        embed_dim: output size.
    """

    def __init__(self, vocab_size: int, word_dim: int = 32, hidden_dim: int = 64, embed_dim: int = 64) -> None:
        super().__init__()
        self.config = {"vocab_size": vocab_size, "word_dim": word_dim, "hidden_dim": hidden_dim, "embed_dim": embed_dim}
        self.embed_dim = embed_dim
        self.words = nn.Embedding(vocab_size, word_dim, padding_idx=0)
        self.gru = nn.GRU(word_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden_dim, embed_dim)

    def forward(self, tokens: Tensor) -> Tensor:
        if tokens.dim() != 2 or tokens.is_floating_point():
            raise ValueError(f"tokens must be [N, L] integer word indices, got {tokens.dtype} {tuple(tokens.shape)}")
        lengths = token_lengths(tokens).clamp(min=1).cpu()  # an all-padding row reads one padding token
        packed = nn.utils.rnn.pack_padded_sequence(self.words(tokens), lengths, batch_first=True, enforce_sorted=False)
        _, state = self.gru(packed)  # [2, N, hidden]
        return self.out(torch.cat([state[0], state[1]], dim=1))


class ImageEncoder(nn.Module):
    """Images ``[N, 3, H, W]`` in ``[-1, 1]`` (resized to ``image_size``) to embeddings ``[N, embed_dim]``.

    Four stride-2 3x3 convolutions with group norm and leaky ReLU, global average pool, linear.
    """

    def __init__(self, image_size: int = 64, channels: int = 32, embed_dim: int = 64) -> None:
        super().__init__()
        self.config = {"image_size": image_size, "channels": channels, "embed_dim": embed_dim}
        self.image_size = image_size
        layers: list[nn.Module] = []
        c_in = 3
        for mult in (1, 2, 4, 4):
            layers += [nn.Conv2d(c_in, channels * mult, 3, 2, 1), nn.GroupNorm(8, channels * mult), nn.LeakyReLU(0.2)]
            c_in = channels * mult
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(c_in, embed_dim)

    def forward(self, images: Tensor) -> Tensor:
        if images.shape[-1] != self.image_size or images.shape[-2] != self.image_size:
            images = F.interpolate(images, size=(self.image_size, self.image_size), mode="bilinear",
                                   align_corners=False, antialias=images.shape[-1] > self.image_size)
        return self.out(self.body(images).mean(dim=(2, 3)))


def contrastive_loss(image_embeddings: Tensor, text_embeddings: Tensor, temperature: float = 0.1) -> Tensor:
    """Symmetric InfoNCE over a batch of matching pairs: row ``i`` of each side matches row ``i`` of the other.

    Cosine similarities divided by ``temperature``; the cross-entropy of picking the matching caption
    for each image and the matching image for each caption, averaged.
    """
    logits = F.normalize(image_embeddings, dim=1) @ F.normalize(text_embeddings, dim=1).T / temperature
    target = torch.arange(len(logits), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def save_text_image_encoders(path: str | Path, vocabulary: Vocabulary, text: TextEncoder, image: ImageEncoder,
                             max_length: int, extra: dict[str, Any] | None = None) -> None:
    """Writes both encoders, their configurations and the vocabulary to one file (plain data and tensors)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"vocabulary": vocabulary.words, "max_length": max_length,
                "text_config": text.config, "image_config": image.config,
                "text_state": {k: v.float() for k, v in text.state_dict().items()},
                "image_state": {k: v.float() for k, v in image.state_dict().items()},
                "extra": extra or {}}, path)


def read_encoder_file(path: str | Path | None, option: str = "text_encoder") -> dict[str, Any]:
    """The contents of an encoders file (None: the packaged one), with a clear error naming ``option``."""
    path = PACKAGED_ENCODERS if path is None else Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"text encoder file '{path}' ({option}) does not exist; write one with "
                                "python benchmarks/train_text_encoder.py --out FILE")
    contents = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(contents, dict) or "text_state" not in contents or "vocabulary" not in contents:
        raise ValueError(f"'{path}' ({option}) is not a text encoder file written by save_text_image_encoders")
    return contents


def load_text_image_encoders(path: str | Path | None = None) -> tuple[Vocabulary, TextEncoder, ImageEncoder, int]:
    """``(vocabulary, text_encoder, image_encoder, max_length)`` from a file (None: the packaged one), frozen, eval."""
    contents = read_encoder_file(path)
    text, image = TextEncoder(**contents["text_config"]), ImageEncoder(**contents["image_config"])
    text.load_state_dict(contents["text_state"])
    image.load_state_dict(contents["image_state"])
    return (Vocabulary(contents["vocabulary"]), text.eval().requires_grad_(False),
            image.eval().requires_grad_(False), int(contents["max_length"]))
