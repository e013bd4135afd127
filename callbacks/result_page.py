"""A translation result page: one HTML file of input | output | target rows with per-image scores.

Like pytorch-CycleGAN-and-pix2pix's ``test.py`` page (``index.html`` beside an ``images/`` folder,
relative links, so a browser opens it from disk without a server), plus the per-image L1, PSNR and
SSIM of each output against its target when there is one. No Lightning import.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from callbacks.images import save_png, to_uint8


def image_scores(output: Tensor, target: Tensor) -> dict[str, float]:
    """Per-image L1 (mean absolute difference of ``[-1, 1]`` values), PSNR (dB) and SSIM.

    Args:
        output: ``[C, H, W]`` in ``[-1, 1]``.
        target: the same shape.

    PSNR and SSIM use the data range 2 of ``[-1, 1]`` (SSIM: torchmetrics' Gaussian window 11, σ 1.5,
    which needs H and W >= 11).
    """
    if output.shape != target.shape:
        raise ValueError(f"output {tuple(output.shape)} and target {tuple(target.shape)} differ in shape")
    x, y = output[None].float().clamp(-1, 1), target[None].float().clamp(-1, 1)
    return {"l1": float((x - y).abs().mean()),
            "psnr": float(peak_signal_noise_ratio(x, y, data_range=2.0)),
            "ssim": float(structural_similarity_index_measure(x, y, data_range=2.0))}


@dataclass
class ResultRow:
    """One input's row: its name, the images (``[C, H, W]`` in ``[-1, 1]``) and the scores."""

    name: str
    input: Tensor
    output: Tensor
    target: Tensor | None = None
    scores: dict[str, float] | None = None


def _cell(path: str, size: int) -> str:
    return f'<td><img src="{html.escape(path)}" width="{size}" style="image-rendering: pixelated"></td>'


def write_result_page(rows: Sequence[ResultRow], outdir: str | Path, title: str = "translation results",
                      display_size: int = 128) -> Path:
    """Writes ``outdir/index.html`` and its PNGs in ``outdir/images/``; returns the page's path.

    The table has a row per input (name, input, output, target when given, L1 / PSNR / SSIM when
    scored) and, when any row is scored, a last row with the means.
    """
    outdir = Path(outdir)
    has_target = any(r.target is not None for r in rows)
    scored = [r.scores for r in rows if r.scores]
    header = ["name", "input", "output"] + (["target"] if has_target else []) + (["L1", "PSNR (dB)", "SSIM"] if scored else [])
    lines = ["<!DOCTYPE html>", '<html><head><meta charset="utf-8">', f"<title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif} td,th{padding:4px;text-align:center} "
             "table{border-collapse:collapse} tr:nth-child(even){background:#f2f2f2}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>", "<table>", "<tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr>"]
    for i, row in enumerate(rows):
        stem = f"{i:05d}"
        cells = [f"<td>{html.escape(row.name)}</td>"]
        for kind in ("input", "output", "target"):
            image = getattr(row, kind)
            if image is None:
                if kind == "target" and has_target:
                    cells.append("<td>-</td>")
                continue
            relative = f"images/{stem}_{kind}.png"
            save_png(to_uint8(image[None])[0], outdir / relative)
            cells.append(_cell(relative, display_size))
        if scored:
            s = row.scores
            cells += [f"<td>{s['l1']:.4f}</td><td>{s['psnr']:.2f}</td><td>{s['ssim']:.4f}</td>"] if s else ["<td>-</td>"] * 3
        lines.append("<tr>" + "".join(cells) + "</tr>")
    if scored:
        means = {k: sum(s[k] for s in scored) / len(scored) for k in ("l1", "psnr", "ssim")}
        blank = "<td></td>" * (len(header) - 4)
        lines.append(f"<tr><th>mean of {len(scored)}</th>{blank}<th>{means['l1']:.4f}</th><th>{means['psnr']:.2f}</th>"
                     f"<th>{means['ssim']:.4f}</th></tr>")
    lines += ["</table>", "</body></html>"]
    page = outdir / "index.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return page

