"""Inspect a trained generator from its checkpoint alone (no YAML): images, walks, mixing, projection, PPL, pages.

    python generate.py images --ckpt CKPT --seeds 0-7,42 --outdir out/          # one PNG per seed
    python generate.py images --ckpt CKPT --seeds 0-15 --trunc 0.7 --grid --outdir out/
    python generate.py images --ckpt CKPT --seeds 0-9 --sweep 1,0.7,0.4,0 --outdir out/   # truncation sweep
    python generate.py images --ckpt CKPT --input photos/ --direction BtoA --outdir out/   # translation
    python generate.py interpolate --ckpt CKPT --seeds 0,5,9 --steps 8 --outdir out/   # grid + GIF
    python generate.py mix --ckpt STYLEGAN_CKPT --rows 0-3 --cols 10-14 --crossover 4 --outdir out/
    python generate.py project --ckpt CKPT --target digit.png --outdir out/     # GAN inversion
    python generate.py ppl --ckpt CKPT --num_samples 2000                        # perceptual path length
    python generate.py html --ckpt CKPT --input inputs/ --target targets/ --outdir page/

Every command reads the generator with ``gan_modules.load_generator`` (the EMA weights when the run
kept them; ``--no_ema`` for the trained ones). Seeds name latents: the same seed gives the same
image. ``--trunc`` is ψ for StyleGAN (in [0, 1], towards the tracked mean w) and the threshold of
BigGAN's truncation trick on z for the other families. See docs/generation.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torchvision.transforms.functional as TF
from torch import Tensor, nn

from callbacks.images import image_grid, save_gif, save_png, to_uint8
from callbacks.metrics.ppl import PerceptualPathLength
from callbacks.result_page import ResultRow, image_scores, write_result_page
from datamodules.folder import DEFAULT_EXTENSIONS, open_image
from datamodules.paired import scan_images, to_signed, to_tensor
from evaluate import build_extractor
from gan_modules import load_generator
from gan_modules.nets import InpaintingGenerator
from gan_modules.projector import FEATURES, feature_extractor, project
from gan_modules.sampling import (
    check_truncation,
    generate_images,
    interpolate_seeds,
    is_stylegan,
    is_translation,
    parse_seeds,
    style_mixing_grid,
    translate_images,
)


def seeds_type(text: str) -> list[int]:
    try:
        return parse_seeds(text, option="seeds")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("seeds: ")) from None


def floats_type(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"cannot parse '{text}': give comma-separated numbers") from None


# ----------------------------------------------------------------------------------------------- inputs


def read_image(path: str | Path, shape: tuple[int, ...]) -> Tensor:
    """One file as ``[C, H, W]`` in ``[-1, 1]`` at ``shape`` (converted grey/RGB, resized bilinearly)."""
    image = to_tensor(open_image(str(path), shape[0]))
    if tuple(image.shape[1:]) != tuple(shape[1:]):
        image = TF.resize(image, list(shape[1:]), interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    return to_signed(image)


def read_folder(folder: str, shape: tuple[int, ...]) -> tuple[list[str], list[Path], Tensor]:
    """The images under ``folder`` (recursive, sorted): names (relative, no extension), paths, ``[N, *shape]``."""
    files = scan_images(folder, DEFAULT_EXTENSIONS)
    names = [str(Path(f).relative_to(folder).with_suffix("")) for f in files]
    return names, [Path(f) for f in files], torch.stack([read_image(f, shape) for f in files])


def by_name(folder: str) -> dict[str, Path]:
    """Image files under ``folder`` keyed by their relative name without extension."""
    return {str(Path(f).relative_to(folder).with_suffix("")): Path(f) for f in scan_images(folder, DEFAULT_EXTENSIONS)}


def masks_for(names: list[str], mask_dir: str | None, shape: tuple[int, ...]) -> Tensor:
    """Hole masks ``[N, 1, H, W]`` (1 = missing): from ``mask_dir`` by name (white = hole), else a centre
    square of half the side."""
    height, width = shape[1:]
    if mask_dir is None:
        mask = torch.zeros(1, height, width)
        mask[:, height // 4: height // 4 + height // 2, width // 4: width // 4 + width // 2] = 1.0
        return mask.expand(len(names), -1, -1, -1)
    files = by_name(mask_dir)
    missing = [n for n in names if n not in files]
    if missing:
        raise FileNotFoundError(f"--mask: no mask in '{mask_dir}' for {', '.join(missing[:10])}")
    return torch.stack([(read_image(files[n], (1, height, width)) > 0).float() for n in names])


# --------------------------------------------------------------------------------------------- helpers


def enlarge(picture: Tensor, scale: int) -> Tensor:
    """A uint8 ``[C, H, W]`` picture enlarged ``scale`` times (nearest: pixels stay sharp)."""
    return picture if scale == 1 else picture.repeat_interleave(scale, 1).repeat_interleave(scale, 2)


def load(parser: argparse.ArgumentParser, args: argparse.Namespace) -> nn.Module:
    """The checkpoint's generator; a bad file or ``--direction`` is a parser error naming the option."""
    which = getattr(args, "direction", None)
    try:
        generator = load_generator(args.ckpt, map_location=args.device, use_ema=not args.no_ema, which=which)
    except ValueError as error:
        parser.error(f"argument {'--direction' if 'which=' in str(error) else '--ckpt'}: {error}")
    except (FileNotFoundError, KeyError, PermissionError, ImportError, TypeError) as error:
        message = error.args[0] if isinstance(error, KeyError) else str(error)
        parser.error(f"argument --ckpt: {message}")
    if len(generator.sample_shape) != 3:
        parser.error(f"argument --ckpt: the generator makes {generator.sample_shape[0]}-d points, not images")
    return generator


def check_latent_options(parser: argparse.ArgumentParser, args: argparse.Namespace, generator: nn.Module) -> None:
    """``--class`` and ``--trunc`` against the generator (translation generators take neither)."""
    if is_translation(generator):
        for option in ("class_index", "trunc"):
            if getattr(args, option, None) is not None:
                name = "--class" if option == "class_index" else "--trunc"
                parser.error(f"argument {name}: the checkpoint's generator translates images; it has no latent")
        return
    class_index = getattr(args, "class_index", None)
    if class_index is not None:
        if generator.num_classes == 0:
            parser.error("argument --class: the checkpoint's generator is unconditional (num_classes = 0)")
        if not 0 <= class_index < generator.num_classes:
            parser.error(f"argument --class: must be in [0, {generator.num_classes - 1}] (the generator has "
                         f"{generator.num_classes} classes), got {class_index}")
    try:
        check_truncation(generator, getattr(args, "trunc", None))
    except ValueError as error:
        parser.error(f"argument --trunc: {str(error).removeprefix('truncation: ')}")


def translation_inputs(parser: argparse.ArgumentParser, args: argparse.Namespace, generator: nn.Module
                       ) -> tuple[list[str], Tensor, Tensor | None]:
    """Names, inputs at the generator's ``input_shape`` and (inpainting) masks of ``--input``."""
    if args.input is None:
        parser.error("argument --input: the checkpoint's generator translates images: give --input DIR, "
                     "a folder of input images")
    if not Path(args.input).is_dir():
        parser.error(f"argument --input: folder '{args.input}' does not exist")
    shape = tuple(generator.input_shape or generator.sample_shape)
    try:
        names, _, inputs = read_folder(args.input, shape)
        masks = masks_for(names, args.mask, shape) if isinstance(generator, InpaintingGenerator) else None
    except (FileNotFoundError, ValueError) as error:
        parser.error(f"argument --input: {error}")
    if masks is not None:
        inputs = inputs * (1 - masks)  # the hole is unknown: the data contract zeroes it
    return names, inputs, masks


# -------------------------------------------------------------------------------------------- commands


def cmd_images(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[Path]:
    generator = load(parser, args)
    check_latent_options(parser, args, generator)
    outdir = Path(args.outdir)
    if is_translation(generator):
        names, inputs, masks = translation_inputs(parser, args, generator)
        outputs = translate_images(generator, inputs, seed=args.seed, masks=masks)
        if args.grid:
            return [save_png(enlarge(image_grid(outputs), args.scale), outdir / "grid.png")]
        return [save_png(enlarge(to_uint8(o[None])[0], args.scale), outdir / f"{n}.png") for n, o in zip(names, outputs, strict=True)]
    if args.input is not None:
        parser.error("argument --input: the checkpoint's generator maps latents to images; --input is for "
                     "translation checkpoints")
    if args.sweep is not None:  # a row per truncation value, a column per seed
        for value in args.sweep:
            try:
                check_truncation(generator, value)
            except ValueError as error:
                parser.error(f"argument --sweep: {str(error).removeprefix('truncation: ')}")
        rows = [generate_images(generator, args.seeds, value, args.class_index) for value in args.sweep]
        grid = image_grid(torch.cat(rows), nrow=len(args.seeds))
        return [save_png(enlarge(grid, args.scale), outdir / "truncation_sweep.png")]
    images = generate_images(generator, args.seeds, args.trunc, args.class_index)
    if args.grid:
        return [save_png(enlarge(image_grid(images), args.scale), outdir / "grid.png")]
    return [save_png(enlarge(to_uint8(image[None])[0], args.scale), outdir / f"seed{seed:04d}.png")
            for seed, image in zip(args.seeds, images, strict=True)]


def require_latent(parser: argparse.ArgumentParser, generator: nn.Module, command: str) -> None:
    if is_translation(generator):
        parser.error(f"argument --ckpt: '{command}' needs a generator of latents; this checkpoint translates images "
                     "(use 'images --input' or 'html')")


def cmd_interpolate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[Path]:
    generator = load(parser, args)
    require_latent(parser, generator, "interpolate")
    check_latent_options(parser, args, generator)
    if len(args.seeds) < 2:
        parser.error(f"argument --seeds: a walk needs at least two seeds, got {args.seeds}")
    if args.steps < 2:
        parser.error(f"argument --steps: must be >= 2, got {args.steps}")
    walk = interpolate_seeds(generator, args.seeds, args.steps, args.trunc, args.class_index)
    outdir = Path(args.outdir)
    grid = save_png(enlarge(image_grid(walk.flatten(0, 1), nrow=args.steps), args.scale), outdir / "interpolation.png")
    path = torch.cat([walk[:, :-1].flatten(0, 1), walk[-1:, -1]])  # each seed's image once
    frames = [enlarge(to_uint8(image[None])[0], args.scale) for image in path]
    gif = save_gif(frames + frames[-2:0:-1], outdir / "interpolation.gif", duration_ms=args.frame_ms)  # there and back
    return [grid, gif]


def cmd_mix(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[Path]:
    generator = load(parser, args)
    if not is_stylegan(generator):
        parser.error("argument --ckpt: style mixing needs a StyleGAN checkpoint (a mapping network and style inputs)")
    check_latent_options(parser, args, generator)
    crossover = args.crossover if args.crossover is not None else len(generator.style_layers("coarse"))
    if not 0 <= crossover <= generator.num_ws:
        parser.error(f"argument --crossover: must be in [0, {generator.num_ws}] (the generator's style inputs), "
                     f"got {crossover}")
    grid = style_mixing_grid(generator, args.rows, args.cols, crossover, args.trunc, args.class_index)
    return [save_png(enlarge(image_grid(grid, nrow=len(args.cols) + 1), args.scale), Path(args.outdir) / "mixing.png")]


def cmd_project(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[Path]:
    generator = load(parser, args)
    require_latent(parser, generator, "project")
    check_latent_options(parser, args, generator)
    if not Path(args.target).is_file():
        parser.error(f"argument --target: file '{args.target}' does not exist")
    if args.steps < 1:
        parser.error(f"argument --steps: must be >= 1, got {args.steps}")
    name = args.features if args.features != "auto" else ("digits" if generator.sample_shape[0] == 1 else "none")
    try:
        target = read_image(args.target, generator.sample_shape)
        feature = feature_extractor(name, args.weights_path, option="--weights_path")
    except FileNotFoundError as error:
        parser.error(f"argument --weights_path: {error}")
    except ValueError as error:
        parser.error(f"argument --target: {error}")
    result = project(generator, target.to(args.device), num_steps=args.steps, lr=args.lr, feature=feature,
                     pixel_weight=args.pixel_weight, feature_weight=args.feature_weight, class_index=args.class_index,
                     seed=args.seed)
    outdir = Path(args.outdir)
    scores = image_scores(result.image[0].cpu(), target)
    paths = [save_png(enlarge(to_uint8(target[None])[0], args.scale), outdir / "target.png"),
             save_png(enlarge(to_uint8(result.image)[0], args.scale), outdir / "projected.png")]
    latent = outdir / "projected_latent.pt"
    torch.save({"space": result.space, "latent": result.latent.cpu(), "label": result.label, "ckpt": str(args.ckpt),
                "features": name, **scores}, latent)
    frames = [enlarge(image_grid(torch.stack([target, frame[0].cpu()]), nrow=2), args.scale) for frame in result.frames]
    paths += [latent, save_gif(frames, outdir / "progress.gif", duration_ms=args.frame_ms)]
    print(f"projected in {result.space} ({name} features): L1 {scores['l1']:.4f}, PSNR {scores['psnr']:.2f} dB, "
          f"SSIM {scores['ssim']:.4f} -> {outdir}")
    return paths


def cmd_ppl(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, float]:
    generator = load(parser, args)
    require_latent(parser, generator, "ppl")
    space = args.space or ("w" if is_stylegan(generator) else "z")
    if space == "w" and not is_stylegan(generator):
        parser.error("argument --space: 'w' needs a StyleGAN checkpoint; use --space z")
    try:
        extractor = build_extractor(args.extractor, args.weights_path)
    except FileNotFoundError as error:
        parser.error(f"argument --weights_path: {error}")
    metric = PerceptualPathLength(extractor, num_samples=args.num_samples, epsilon=args.epsilon, space=space,
                                  sampling=args.sampling, batch_size=args.batch_size, seed=args.seed)
    values = metric(generator)
    print(f"| metric | value |  ({args.num_samples} paths, space {space}, sampling {args.sampling}, "
          f"extractor {args.extractor}, epsilon {args.epsilon:g})")
    print("| --- | --- |")
    for key in ("ppl", "ppl_unfiltered"):
        print(f"| {key} | {values[key]:.6g} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"ckpt": str(args.ckpt), "space": space, "sampling": args.sampling,
                                               "extractor": args.extractor, "epsilon": args.epsilon, **values}, indent=2))
    return values


def cmd_html(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[Path]:
    generator = load(parser, args)
    if not is_translation(generator):
        parser.error("argument --ckpt: 'html' writes a translation page; this checkpoint's generator maps latents "
                     "to images (use 'images')")
    names, inputs, masks = translation_inputs(parser, args, generator)
    targets: dict[str, Path] = {}
    if args.target is not None:
        if not Path(args.target).is_dir():
            parser.error(f"argument --target: folder '{args.target}' does not exist")
        targets = by_name(args.target)
    outputs = translate_images(generator, inputs, seed=args.seed, masks=masks).cpu()
    rows = []
    for name, source, output in zip(names, inputs, outputs, strict=True):
        target = read_image(targets[name], generator.sample_shape) if name in targets else None
        scores = image_scores(output, target) if target is not None else None
        rows.append(ResultRow(name, source, output, target, scores))
    page = write_result_page(rows, args.outdir, title=f"{Path(args.ckpt).name}: {args.input}", display_size=args.display_size)
    print(f"{len(rows)} rows ({sum(r.target is not None for r in rows)} with a target) -> {page}")
    return [page]


# ------------------------------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str, outdir: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument("--ckpt", required=True, help="a checkpoint written by train.py (any GAN family)")
        if outdir:
            sub.add_argument("--outdir", required=True, help="folder for the files written")
            sub.add_argument("--scale", type=int, default=1, help="enlarge saved pictures this many times (nearest)")
        sub.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
        sub.add_argument("--no_ema", action="store_true", help="the trained generator, not its EMA copy")
        sub.set_defaults(subparser=sub)  # errors then name the subcommand
        return sub

    def latent_options(sub: argparse.ArgumentParser, seeds: str) -> None:
        sub.add_argument("--seeds", type=seeds_type, default=parse_seeds(seeds), help=f"e.g. 0-7,42 (default {seeds})")
        sub.add_argument("--trunc", type=float, default=None,
                         help="StyleGAN: ψ in [0, 1] (towards the mean w); others: z threshold (BigGAN's trick)")
        sub.add_argument("--class", dest="class_index", type=int, default=None,
                         help="class of every image (conditional checkpoints; default seed %% num_classes)")

    def translation_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--input", default=None, help="translation checkpoints: a folder of input images")
        sub.add_argument("--direction", choices=["AtoB", "BtoA"], default=None, help="CycleGAN: which generator")
        sub.add_argument("--mask", default=None, help="inpainting: folder of hole masks (white = hole) named as "
                                                      "the inputs; default a centre square of half the side")
        sub.add_argument("--seed", type=int, default=0, help="seeds test-time dropout (image i gets seed + i)")

    sub = command("images", "one PNG per seed (or a grid); translation checkpoints translate --input")
    latent_options(sub, "0-7")
    translation_options(sub)
    sub.add_argument("--grid", action="store_true", help="one grid.png instead of one file per seed")
    sub.add_argument("--sweep", type=floats_type, default=None,
                     help="truncation values, e.g. 1,0.7,0.4,0: truncation_sweep.png, a row per value")
    sub.set_defaults(run=cmd_images)

    sub = command("interpolate", "an interpolation grid and GIF between consecutive seeds")
    latent_options(sub, "0,1")
    sub.add_argument("--steps", type=int, default=8, help="images per segment, both seeds included")
    sub.add_argument("--frame_ms", type=int, default=80, help="GIF frame duration")
    sub.set_defaults(run=cmd_interpolate)

    sub = command("mix", "StyleGAN style-mixing grid: coarse styles of the row seeds, fine of the column seeds")
    sub.add_argument("--rows", type=seeds_type, default=parse_seeds("0-3"), help="seeds giving the coarse styles")
    sub.add_argument("--cols", type=seeds_type, default=parse_seeds("10-14"), help="seeds giving the fine styles")
    sub.add_argument("--crossover", type=int, default=None,
                     help="style inputs taken from the row seed (default: the coarse ones, 4-8 px)")
    sub.add_argument("--trunc", type=float, default=None, help="ψ in [0, 1]")
    sub.add_argument("--class", dest="class_index", type=int, default=None,
                     help="class of every image (conditional checkpoints; default 0)")
    sub.set_defaults(run=cmd_mix)

    sub = command("project", "find the latent of a target image (GAN inversion)")
    sub.add_argument("--target", required=True, help="the image file to reproduce")
    sub.add_argument("--steps", type=int, default=500)
    sub.add_argument("--lr", type=float, default=0.1)
    sub.add_argument("--features", choices=("auto", *FEATURES), default="auto",
                     help="feature loss: digits classifier, FID Inception, VGG19 (--weights_path), none; "
                          "auto = digits for 1-channel generators, none otherwise")
    sub.add_argument("--weights_path", default=None, help="weights file of the feature extractor")
    sub.add_argument("--pixel_weight", type=float, default=1.0)
    sub.add_argument("--feature_weight", type=float, default=1.0)
    sub.add_argument("--class", dest="class_index", type=int, default=None, help="conditional: the class (default: best)")
    sub.add_argument("--seed", type=int, default=0)
    sub.add_argument("--frame_ms", type=int, default=60, help="GIF frame duration")
    sub.set_defaults(run=cmd_project)

    sub = command("ppl", "perceptual path length (Karras et al. 2019) in an extractor's features", outdir=False)
    sub.add_argument("--num_samples", type=int, default=2000, help="paths (the paper: 100,000)")
    sub.add_argument("--space", choices=("z", "w"), default=None, help="default: w for StyleGAN, z otherwise")
    sub.add_argument("--sampling", choices=("full", "end"), default="full")
    sub.add_argument("--epsilon", type=float, default=1e-4)
    sub.add_argument("--extractor", choices=("digits", "inception"), default="digits")
    sub.add_argument("--weights_path", default=None, help="extractor weights (Inception: pt_inception-2015-12-05-6726825d.pth)")
    sub.add_argument("--batch_size", type=int, default=100)
    sub.add_argument("--seed", type=int, default=0)
    sub.add_argument("--json", default=None, help="also write the numbers to this file")
    sub.set_defaults(run=cmd_ppl)

    sub = command("html", "a translation result page: input | output | target rows with L1 / PSNR / SSIM")
    translation_options(sub)
    sub.add_argument("--target", default=None, help="folder of targets named as the inputs (optional)")
    sub.add_argument("--display_size", type=int, default=128, help="width of the images on the page, px")
    sub.set_defaults(run=cmd_html)
    return parser


def main(argv: list[str] | None = None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "scale", 1) < 1:
        args.subparser.error(f"argument --scale: must be >= 1, got {args.scale}")
    return args.run(args.subparser, args)


if __name__ == "__main__":
    main()
