"""Trains the text encoder (and its image encoder) on captioned images with a contrastive objective.

StackGAN conditions on a frozen sentence embedding from an encoder trained to match images and
captions (Reed et al. 2016). This script trains :class:`gan_modules.nets.text.TextEncoder` (a GRU
over the tokens) and :class:`gan_modules.nets.text.ImageEncoder` (a small CNN) together with the
symmetric InfoNCE loss (``gan_modules.nets.text.contrastive_loss``, temperature 0.1) on the training
pairs of ``TextImageDataModule`` (the embedded captioned shapes unless ``--root``), Adam, a cosine
learning rate, and writes both with the vocabulary to one file. It prints the R-precision (1 of 100,
the other captions from other attribute combinations) of the real ``val`` and ``heldout`` images, and
(on the embedded set) a linear probe of each attribute on the sentence and image embeddings
(``attribute_probe``: a caption's shape must be in its embedding for StackGAN to draw it).

Usage::

    python benchmarks/train_text_encoder.py                      # writes the packaged file
    python benchmarks/train_text_encoder.py --steps 50 --out /tmp/enc.pt   # a quick check
    python benchmarks/train_text_encoder.py --root DATA --out my_encoder.pt  # a captioned folder
    python benchmarks/train_text_encoder.py --probe gan_modules/nets/weights/text_encoder_shapes.pt
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callbacks.metrics.text_image import r_precision  # noqa: E402
from datamodules.text_image import CaptionedImages, TextImageDataModule  # noqa: E402
from gan_modules.nets.text import (  # noqa: E402
    PACKAGED_ENCODERS,
    ImageEncoder,
    TextEncoder,
    contrastive_loss,
    save_text_image_encoders,
)


def attribute_groups(data: CaptionedImages) -> torch.Tensor | None:
    """Per pair, an id of its image's attribute combination (None without attributes)."""
    if data.attributes is None:
        return None
    attributes = data.attributes[data.pairs[:, 0]]
    return torch.unique(attributes, dim=0, return_inverse=True)[1]


@torch.no_grad()
def encoder_r_precision(text: TextEncoder, image: ImageEncoder, data: CaptionedImages, count: int = 1000,
                        seed: int = 0) -> float:
    """R-precision (1 of 100) of ``count`` real pairs of ``data``: each image against its own caption."""
    index = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:count]
    batch = data.__getitems__(index.tolist())
    groups = attribute_groups(data)
    return r_precision(image(batch["image"]), text(batch["caption_tokens"]),
                       groups=None if groups is None else groups[index], seed=seed)


@torch.no_grad()
def attribute_probe(text: TextEncoder, image: ImageEncoder, data: TextImageDataModule) -> dict[str, float]:
    """How much of each attribute the embeddings hold: a logistic regression fitted on the ``train`` split's
    embeddings (every caption; every image) predicts the attribute on ``val``; its accuracy per attribute,
    ``text/<name>`` and ``image/<name>``. Empty without attributes (a captioned folder)."""
    from sklearn.linear_model import LogisticRegression

    from datamodules.shapes_captions import ATTRIBUTES

    def embed(split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        pairs = data.split(split)
        tokens, images = pairs.tokens, pairs.images.float() / 127.5 - 1
        return text(tokens), pairs.attributes[pairs.pairs[:, 0]], image(images), pairs.attributes

    if data.split("train").attributes is None or "val" not in data.sets:
        return {}
    train_side, val_side = embed("train"), embed("val")
    scores = {}
    for k, name in enumerate(ATTRIBUTES):
        for side, (x, y) in (("text", (0, 1)), ("image", (2, 3))):
            probe = LogisticRegression(max_iter=2000).fit(train_side[x].numpy(), train_side[y][:, k].numpy())
            scores[f"{side}/{name}"] = round(float(probe.score(val_side[x].numpy(), val_side[y][:, k].numpy())), 3)
    return scores


def train(root: str | None, out: Path, steps: int, batch_size: int, lr: float, seed: int,
          image_size: int | None = None) -> dict:
    data = TextImageDataModule(root=root, batch_size=batch_size)
    data.setup()
    train_set = data.split("train")
    torch.manual_seed(seed)
    # the image encoder reads the data's own resolution by default: at 32 px (four stride-2 convolutions down
    # to 2x2) the packaged pair encoded the shape poorly (a linear probe read it from 89% of the sentence
    # embeddings, against 100% for colour, size and position), and StackGAN cannot draw what its text code omits
    text = TextEncoder(len(data.vocabulary))
    image = ImageEncoder(image_size=image_size or data.image_size)
    params = [*text.parameters(), *image.parameters()]
    optimizer = torch.optim.Adam(params, lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for step in range(steps):
        batch = train_set.__getitems__(torch.randint(len(train_set), (batch_size,), generator=gen).tolist())
        loss = contrastive_loss(image(batch["image"]), text(batch["caption_tokens"]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"step {step}: loss {loss.item():.4f}", flush=True)
    text.eval()
    image.eval()
    scores = {"steps": steps, "seconds": round(time.perf_counter() - start, 1)}
    for split in ("val", "heldout"):
        if split in data.sets:
            scores[f"r_precision_{split}"] = encoder_r_precision(text, image, data.sets[split])
    scores["probe"] = attribute_probe(text, image, data)
    save_text_image_encoders(out, data.vocabulary, text, image, data.max_length, extra=scores)
    return scores


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="a captioned folder (default: the embedded captioned shapes)")
    parser.add_argument("--out", default=str(PACKAGED_ENCODERS))
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--image-size", type=int, default=None, help="the image encoder's input side (default: the "
                        "data's image size; other sizes are resized bilinearly)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--probe", default=None, metavar="FILE", help="train nothing: print the attribute probe "
                        "(see attribute_probe) of an existing encoders file")
    args = parser.parse_args(argv)
    if args.probe:
        from gan_modules.nets.text import load_text_image_encoders

        _, text, image, _ = load_text_image_encoders(args.probe)
        data = TextImageDataModule(root=args.root)
        data.setup()
        scores = attribute_probe(text, image, data)
        print(scores)
        return scores
    scores = train(args.root, Path(args.out), args.steps, args.batch_size, args.lr, args.seed, args.image_size)
    print(scores, "->", args.out)
    return scores


if __name__ == "__main__":
    main()
