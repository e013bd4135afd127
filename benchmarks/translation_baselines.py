"""Constant-image baselines of the embedded translation tasks, and where edges2photo's training photos are empty.

What is measured:
    For every preset of ``benchmarks/translation_quality.py``, its held-out test patches (the same
    datamodule, split and seed) are scored with that script's ``scores`` (L1 on ``[-1, 1]``, PSNR, SSIM
    on ``[0, 1]``) for three translations that learn nothing: the trivial one of the results table
    (the input, or bicubic upsampling), a flat grey image (0 everywhere), and a flat image of the mean
    colour of the task's training photos (under the true colour map for CycleGAN). A model that does not beat the flat images has learnt
    nothing that transfers to the test photo.

    Then, for ``edges2photo``, each colour photo's area far from any Canny edge (more than 8 px from
    one, on the whole photo with the preset's detector settings) and the median colour there: what
    a generator is taught to paint where the edge map is empty.

Usage::

    python benchmarks/translation_baselines.py     # prints, and writes its section of docs/results.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import distance_transform_edt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._results import machine, write_section  # noqa: E402
from benchmarks.translation_quality import PRESETS, scores, test_data, translate_test_set  # noqa: E402
from datamodules import embedded_photos as ep  # noqa: E402

FAR = 8  # pixels from the nearest edge


def main(argv: list[str] | None = None) -> str:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)  # no options; --help
    lines = ["| preset | trivial (table's baseline) | flat grey | flat train-mean colour |", "| --- | --- | --- | --- |"]
    for stem in PRESETS:
        datamodule = test_data(ROOT / "configs" / f"{stem}.yaml", quick=False)
        mapping = getattr(datamodule, "true_mapping", None)
        _, trivial, truth = translate_test_set(datamodule, lambda batch: torch.zeros(0), seed=0)  # no model
        train = ep.photos("train", truth.shape[1])
        mean = torch.stack([p.mean((1, 2)) for p in train]).mean(0).view(1, -1, 1, 1).expand_as(truth)
        if mapping is not None:  # CycleGAN's truth is the colour map of A: so is the flat colour
            mean = mapping(mean.contiguous())
        cells = [scores(x, truth) for x in (trivial, torch.zeros_like(truth), mean)]
        lines.append(f"| {stem} | " + " | ".join(f"{c['l1']:.4f} / {c['psnr']:.2f} / {c['ssim']:.4f}" for c in cells) + " |")
    lines += ["", f"edges2photo, Canny (sigma 2) on each colour photo: the area more than {FAR} px from an edge and its "
              "median colour (R, G, B in [-1, 1]):", "", "| split | photo | area far from edges | median colour there |",
              "| --- | --- | --- | --- |"]
    for split in ep.SPLITS:
        for name in ep.photo_names(split, 3):
            photo = ep.load_photo(name)
            far = distance_transform_edt(ep.edge_map(photo)[0].numpy() > 0) > FAR
            median = np.median(photo.numpy()[:, far], axis=1)
            lines.append(f"| {split} | {name} | {far.mean():.0%} | ({', '.join(f'{v:.2f}' for v in median)}) |")
    markdown = "\n".join([
        "### Translation baselines that learn nothing", "",
        "`python benchmarks/translation_baselines.py`: the test patches of each preset (as in the table above) "
        "scored as L1 / PSNR / SSIM for the trivial translation, a flat grey image and a flat image of the "
        f"training photos' mean colour. Machine: {machine()}.", "", *lines])
    print(markdown)
    print(f"written to {write_section('translation_baselines', markdown)}")
    return markdown


if __name__ == "__main__":
    main()
