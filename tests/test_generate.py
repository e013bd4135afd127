"""generate.py on checkpoints trained a few steps here: images, walks, mixing, projection, PPL, pages, bad input."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from conftest import digits_data, make_trainer
from PIL import Image
from test_translation_models import SyntheticPairs, _cyclegan, _family

import generate
from callbacks.images import save_png, to_uint8
from callbacks.result_page import image_scores
from gan_modules import GAN, ConditionalGAN, StyleGAN, load_generator
from gan_modules.nets import (
    ConditionalDCGANDiscriminator,
    ConditionalDCGANGenerator,
    DCGANDiscriminator,
    DCGANGenerator,
    StyleGANDiscriminator,
    StyleGANGenerator,
)
from gan_modules.projector import feature_extractor, project
from gan_modules.sampling import (
    generate_images,
    interpolate_seeds,
    parse_seeds,
    seed_latents,
    style_mixing_grid,
)

FAMILIES = ("dcgan", "conditional", "stylegan")


def _model(kind: str):
    torch.manual_seed(0)
    if kind == "dcgan":
        return GAN(DCGANGenerator((1, 32, 32), latent_dim=8, base_channels=8), DCGANDiscriminator((1, 32, 32), base_channels=8),
                   max_generator_steps=2, ema_decay=0.9)
    if kind == "conditional":
        return ConditionalGAN(ConditionalDCGANGenerator((1, 32, 32), num_classes=10, latent_dim=8, base_channels=8),
                              ConditionalDCGANDiscriminator((1, 32, 32), num_classes=10, base_channels=8),
                              max_generator_steps=2)
    if kind == "stylegan":
        g = StyleGANGenerator((1, 32, 32), latent_dim=8, w_dim=8, channel_base=64, channel_max=8, mapping_layers=2)
        return StyleGAN(g, StyleGANDiscriminator((1, 32, 32), channel_base=64, channel_max=8), max_generator_steps=2)
    if kind == "cycle":
        return _cyclegan(pool_size=2, max_generator_steps=2)
    return _family(kind, max_generator_steps=2)  # "gray": pix2pix grey -> colour; "inpaint"


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """Checkpoints of every family with a generator, each trained 2 generator steps."""
    root = tmp_path_factory.mktemp("ckpts")
    paths = {}
    for kind in (*FAMILIES, "gray", "cycle", "inpaint"):
        model = _model(kind)
        data = digits_data(batch_size=8) if kind in FAMILIES else SyntheticPairs(kind)
        trainer = make_trainer(root / kind)
        trainer.fit(model, data)
        paths[kind] = root / f"{kind}.ckpt"
        trainer.save_checkpoint(paths[kind])
    return paths


def run(*argv) -> object:
    return generate.main([str(a) for a in argv])


def _png(path) -> torch.Tensor:
    return torch.from_numpy(np.array(Image.open(path)))


def _gif_duration(path) -> int:
    """Total milliseconds (Pillow merges identical consecutive frames, adding their durations)."""
    total = 0
    with Image.open(path) as animation:
        for i in range(animation.n_frames):
            animation.seek(i)
            total += animation.info["duration"]
    return total


# ------------------------------------------------------------------------------------------ images


def test_parse_seeds() -> None:
    assert parse_seeds("0-3,42") == [0, 1, 2, 3, 42]
    assert parse_seeds(" 7 ") == [7]
    for bad in ("a", "3-1", "1,,2", "-2", "1.5"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)


@pytest.mark.parametrize("kind", FAMILIES)
def test_images_one_file_per_seed_reproducible(ckpts, tmp_path, kind: str) -> None:
    first = run("images", "--ckpt", ckpts[kind], "--seeds", "0-2,7", "--outdir", tmp_path / "a")
    assert [p.name for p in first] == ["seed0000.png", "seed0001.png", "seed0002.png", "seed0007.png"]
    run("images", "--ckpt", ckpts[kind], "--seeds", "7", "--outdir", tmp_path / "b")
    assert (tmp_path / "a" / "seed0007.png").read_bytes() == (tmp_path / "b" / "seed0007.png").read_bytes()
    # the file is G(z of the seed), z drawn from the seed's own generator, class seed % 10
    generator = load_generator(ckpts[kind])
    z = torch.randn(generator.latent_dim, generator=torch.Generator().manual_seed(7))[None]
    with torch.no_grad():
        expected = generator(z, torch.tensor([7])) if kind == "conditional" else generator(z)
    assert torch.equal(_png(first[-1]), to_uint8(expected)[0, 0])
    images = generate_images(generator, [0, 1, 2, 7])
    assert all(not torch.equal(images[i], images[j]) for i in range(4) for j in range(i))  # a seed, an image
    grid = run("images", "--ckpt", ckpts[kind], "--seeds", "0-3", "--grid", "--scale", "2", "--outdir", tmp_path / "g")
    assert grid[0].name == "grid.png" and Image.open(grid[0]).size == (2 * (2 + 2 * 34), 2 * (2 + 2 * 34))


def test_stylegan_truncation_psi_0_is_the_mean_and_1_untruncated(ckpts, tmp_path) -> None:
    generator = load_generator(ckpts["stylegan"])
    assert generator.w_avg.abs().sum() > 0  # trained: w̄ moved
    mean_image = generator.synthesis(generator.w_avg.expand(1, generator.num_ws, -1))
    at_zero = generate_images(generator, [0, 1, 2], truncation=0.0)
    torch.testing.assert_close(at_zero, mean_image.expand_as(at_zero))
    z = seed_latents([0, 1, 2], generator.latent_dim)
    torch.testing.assert_close(generate_images(generator, [0, 1, 2], truncation=1.0), generator(z))
    torch.testing.assert_close(generate_images(generator, [0, 1, 2]), generator(z))
    half = generate_images(generator, [0], truncation=0.5)
    assert not torch.allclose(half, mean_image) and not torch.allclose(half, generator(z[:1]))
    files = run("images", "--ckpt", ckpts["stylegan"], "--seeds", "3,4", "--trunc", "0", "--outdir", tmp_path)
    assert files[0].read_bytes() == files[1].read_bytes()
    (sweep,) = run("images", "--ckpt", ckpts["stylegan"], "--seeds", "0-2", "--sweep", "1,0", "--outdir", tmp_path)
    grid = _png(sweep)[..., 0]  # rows: ψ = 1 (the seeds' images), ψ = 0 (the mean image three times)
    cells = [grid[2 + 34 * r: 34 + 34 * r, 2 + 34 * c: 34 + 34 * c] for r in range(2) for c in range(3)]
    assert torch.equal(cells[0], to_uint8(generator(z[:1]))[0, 0])
    assert all(torch.equal(cell, to_uint8(mean_image)[0, 0]) for cell in cells[3:])


def test_z_truncation_redraws_only_values_beyond_the_threshold() -> None:
    plain, truncated = seed_latents(list(range(20)), 64), seed_latents(list(range(20)), 64, threshold=0.5)
    assert truncated.abs().max() <= 0.5
    inside = plain.abs() <= 0.5
    assert torch.equal(truncated[inside], plain[inside]) and (~inside).any()
    with pytest.raises(ValueError, match="threshold"):
        seed_latents([0], 4, threshold=0.0)


def test_conditional_class_option(ckpts, tmp_path) -> None:
    generator = load_generator(ckpts["conditional"])
    files = run("images", "--ckpt", ckpts["conditional"], "--seeds", "5", "--class", "3", "--outdir", tmp_path)
    with torch.no_grad():
        expected = generator(seed_latents([5], 8), torch.tensor([3]))
    assert torch.equal(_png(files[0]), to_uint8(expected)[0, 0])


# ------------------------------------------------------------------------------------ walks, mixing


@pytest.mark.parametrize("kind", FAMILIES)
def test_interpolation_endpoints_are_the_seeds_images(ckpts, tmp_path, kind: str) -> None:
    generator = load_generator(ckpts[kind])
    walk = interpolate_seeds(generator, [0, 5, 9], steps=5, class_index=2 if kind == "conditional" else None)
    assert walk.shape == (2, 5, 1, 32, 32)
    ends = generate_images(generator, [0, 5, 9], class_index=2 if kind == "conditional" else None)
    torch.testing.assert_close(walk[:, 0], ends[:2], atol=1e-5, rtol=0)
    torch.testing.assert_close(walk[:, -1], ends[1:], atol=1e-5, rtol=0)
    assert not torch.allclose(walk[0, 2], ends[0])  # the middle moves
    grid, gif = run("interpolate", "--ckpt", ckpts[kind], "--seeds", "0,5,9", "--steps", "5", "--outdir", tmp_path)
    assert Image.open(grid).size == (2 + 5 * 34, 2 + 2 * 34)
    assert _gif_duration(gif) == (2 * 9 - 2) * 80  # 9 images along the path, there and back, 80 ms each


def test_style_mixing_grid(ckpts, tmp_path) -> None:
    generator = load_generator(ckpts["stylegan"])
    rows, cols = [0, 1], [10, 11, 12]
    images = generate_images(generator, rows + cols)
    for crossover, source in ((0, "col"), (generator.num_ws, "row")):
        grid = style_mixing_grid(generator, rows, cols, crossover).view(3, 4, 1, 32, 32)
        torch.testing.assert_close(grid[0, 1:], images[2:])  # header row: the column seeds
        torch.testing.assert_close(grid[1:, 0], images[:2])  # header column: the row seeds
        for r in range(2):
            for c in range(3):
                expected = images[2 + c] if source == "col" else images[r]
                torch.testing.assert_close(grid[1 + r, 1 + c], expected, atol=1e-5, rtol=0)
    mixed = style_mixing_grid(generator, rows, cols, 4).view(3, 4, 1, 32, 32)
    assert not torch.allclose(mixed[1, 1], images[0]) and not torch.allclose(mixed[1, 1], images[2])
    (path,) = run("mix", "--ckpt", ckpts["stylegan"], "--rows", "0,1", "--cols", "10-12", "--outdir", tmp_path)
    assert Image.open(path).size == (2 + 4 * 34, 2 + 3 * 34)


# ------------------------------------------------------------------------------------- translation


def _write_inputs(folder, images) -> list[str]:
    names = []
    for i, image in enumerate(images):
        names.append(f"im{i}")
        save_png(to_uint8(image[None])[0], folder / f"im{i}.png")
    return names


@pytest.mark.parametrize(("kind", "direction"), [("gray", None), ("cycle", "AtoB"), ("cycle", "BtoA"), ("inpaint", None)])
def test_translation_checkpoints_translate_a_folder(ckpts, tmp_path, kind: str, direction: str | None) -> None:
    generator = load_generator(ckpts[kind], which=direction)
    shape = generator.input_shape or generator.sample_shape
    sources = torch.rand(3, *shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    _write_inputs(tmp_path / "in", sources)
    extra = ["--direction", direction] if direction else []
    files = run("images", "--ckpt", ckpts[kind], "--input", tmp_path / "in", "--outdir", tmp_path / "out", *extra)
    assert [f.name for f in files] == ["im0.png", "im1.png", "im2.png"]
    again = run("images", "--ckpt", ckpts[kind], "--input", tmp_path / "in", "--outdir", tmp_path / "again", *extra)
    assert [f.read_bytes() for f in files] == [f.read_bytes() for f in again]
    if kind == "cycle":  # the right generator: the module's generator (A→B) or generator_ba (B→A)
        model = _cyclegan(pool_size=2)
        model.load_state_dict(torch.load(ckpts["cycle"], weights_only=True)["state_dict"])
        net = model.generator if direction == "AtoB" else model.generator_ba
        quantised = torch.stack([generate.read_image(tmp_path / "in" / f"im{i}.png", shape) for i in range(3)])
        with torch.no_grad():
            expected = net.eval()(quantised)
        assert torch.equal(_png(files[1]), to_uint8(expected[1:2])[0].permute(1, 2, 0))


def test_cyclegan_both_generators_load(ckpts) -> None:
    state = torch.load(ckpts["cycle"], weights_only=True)["state_dict"]
    forward, backward = load_generator(ckpts["cycle"], which="AtoB"), load_generator(ckpts["cycle"], which="BtoA")
    default = load_generator(ckpts["cycle"])
    for name, p in backward.state_dict().items():
        assert torch.equal(p, state[f"generator_ba.{name}"])
    for name, p in forward.state_dict().items():
        assert torch.equal(p, state[f"generator.{name}"]) and torch.equal(p, default.state_dict()[name])
    with pytest.raises(ValueError, match="which='BtoA'"):
        load_generator(ckpts["gray"], which="BtoA")


def test_html_page_rows_and_scores(ckpts, tmp_path) -> None:
    generator = load_generator(ckpts["gray"])
    sources = torch.rand(3, *generator.input_shape, generator=torch.Generator().manual_seed(2)) * 2 - 1
    _write_inputs(tmp_path / "in", sources)
    targets = torch.rand(2, *generator.sample_shape, generator=torch.Generator().manual_seed(3)) * 2 - 1
    _write_inputs(tmp_path / "tgt", targets)  # im0 and im1 have a target, im2 none
    (page,) = run("html", "--ckpt", ckpts["gray"], "--input", tmp_path / "in", "--target", tmp_path / "tgt",
                  "--outdir", tmp_path / "page")
    text = page.read_text()
    assert text.count("<tr>") == 1 + 3 + 1  # header, rows, means
    assert text.count('src="images/') == 3 * 2 + 2
    for src in re.findall(r'src="([^"]+)"', text):
        assert (page.parent / src).is_file()  # relative links: opens from disk
    output = torch.from_numpy(np.array(Image.open(page.parent / "images/00000_output.png")))
    output = output.permute(2, 0, 1).float() / 127.5 - 1
    target = generate.read_image(tmp_path / "tgt" / "im0.png", generator.sample_shape)
    scores = image_scores(output, target)
    assert f"{scores['l1']:.4f}" in text and f"{scores['psnr']:.2f}" in text


def test_image_scores_against_hand_values() -> None:
    from skimage.metrics import structural_similarity

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3, 128, 128, generator=gen) * 2 - 1
    y = (x + 0.1 * torch.randn(3, 128, 128, generator=gen)).clamp(-1, 1)
    scores = image_scores(x, y)
    mse = float((x - y).square().mean())
    assert scores["l1"] == pytest.approx(float((x - y).abs().mean()), rel=1e-6)
    assert scores["psnr"] == pytest.approx(10 * math.log10(4 / mse), rel=1e-5)
    reference = structural_similarity(x.numpy(), y.numpy(), data_range=2.0, channel_axis=0, gaussian_weights=True,
                                      sigma=1.5, use_sample_covariance=False)
    assert scores["ssim"] == pytest.approx(reference, abs=5e-3)  # the borders are handled differently
    assert image_scores(x, x)["ssim"] == pytest.approx(1.0, abs=1e-5)


# -------------------------------------------------------------------------------------- projection


@pytest.mark.parametrize("kind", ["dcgan", "stylegan"])
def test_projector_recovers_the_latent_of_a_generated_image(kind: str) -> None:
    torch.manual_seed(0)
    if kind == "dcgan":
        generator = DCGANGenerator((1, 16, 16), latent_dim=8, base_channels=8).eval().requires_grad_(False)
        latents = torch.randn(3, 8)
        target = generator(latents[:1])
    else:
        generator = StyleGANGenerator((1, 16, 16), latent_dim=8, w_dim=8, channel_base=64, channel_max=8,
                                      mapping_layers=2).eval().requires_grad_(False)
        generator.mapping.w_avg.copy_(generator.mapping(torch.randn(1000, 8))[:, 0].mean(0))  # as training tracks it
        latents = generator.mapping(torch.randn(3, 8))[:, 0]
        target = generator.synthesis(latents[:1, None].expand(-1, generator.num_ws, -1))
    result = project(generator, target, num_steps=200, num_starts=8)
    assert result.space == ("z" if kind == "dcgan" else "w")
    error = float((result.latent - latents[:1]).norm())
    random_distance = float((latents[1] - latents[2]).norm())
    assert error < 0.05 * random_distance, (error, random_distance)
    assert float((result.image - target).abs().max()) < 0.01
    assert len(result.frames) == 21 and result.losses[-1] < result.losses[0]


def test_project_command_writes_its_files(ckpts, tmp_path) -> None:
    generator = load_generator(ckpts["conditional"])
    target = generate_images(generator, [3], class_index=4)
    save_png(to_uint8(target)[0], tmp_path / "target.png")
    files = run("project", "--ckpt", ckpts["conditional"], "--target", tmp_path / "target.png", "--steps", "20",
                "--outdir", tmp_path / "out")
    assert [f.name for f in files] == ["target.png", "projected.png", "projected_latent.pt", "progress.gif"]
    saved = torch.load(files[2], weights_only=True)
    assert saved["space"] == "z" and saved["latent"].shape == (1, 8) and saved["features"] == "digits"
    assert saved["label"] in range(10)
    assert _gif_duration(files[3]) == 3 * 60  # frames at steps 0 and 10, and the result
    assert Image.open(files[3]).size == (2 + 2 * 34, 2 + 34)  # target | projection


def test_feature_extractors_are_differentiable_and_name_missing_files(tmp_path) -> None:
    digits = feature_extractor("digits")
    x = torch.zeros(2, 1, 32, 32, requires_grad=True)
    digits(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name in ("vgg", "digits", "inception"):
        with pytest.raises(FileNotFoundError, match="--weights_path"):
            feature_extractor(name, str(tmp_path / "missing.pt"), option="--weights_path")


# ------------------------------------------------------------------------------------------------ PPL


def test_ppl_command(ckpts, tmp_path) -> None:
    values = run("ppl", "--ckpt", ckpts["stylegan"], "--num_samples", "16", "--batch_size", "8",
                 "--json", tmp_path / "ppl.json")
    assert values["ppl"] > 0 and values["num_paths"] == 16
    assert (tmp_path / "ppl.json").is_file()
    again = run("ppl", "--ckpt", ckpts["stylegan"], "--num_samples", "16", "--batch_size", "16")
    assert again["ppl"] == pytest.approx(values["ppl"], rel=1e-4)  # batching does not change the paths


# ---------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("argv", "option"), [
    (["images", "--ckpt", "{stylegan}", "--trunc", "1.5"], "--trunc"),
    (["images", "--ckpt", "{stylegan}", "--trunc", "-0.1"], "--trunc"),
    (["images", "--ckpt", "{dcgan}", "--trunc", "0"], "--trunc"),
    (["images", "--ckpt", "{gray}", "--input", "{tmp}", "--trunc", "0.5"], "--trunc"),
    (["images", "--ckpt", "{conditional}", "--class", "10"], "--class"),
    (["images", "--ckpt", "{conditional}", "--class", "-1"], "--class"),
    (["images", "--ckpt", "{dcgan}", "--class", "0"], "--class"),
    (["images", "--ckpt", "{stylegan}", "--sweep", "1,2"], "--sweep"),
    (["images", "--ckpt", "{stylegan}", "--sweep", "1,x"], "--sweep"),
    (["images", "--ckpt", "{dcgan}", "--seeds", "1-x"], "--seeds"),
    (["images", "--ckpt", "{dcgan}", "--seeds", "5-2"], "--seeds"),
    (["images", "--ckpt", "{notgan}"], "--ckpt"),
    (["images", "--ckpt", "{empty}"], "--ckpt"),
    (["images", "--ckpt", "{tmp}/missing.ckpt"], "--ckpt"),
    (["images", "--ckpt", "{gray}"], "--input"),
    (["html", "--ckpt", "{cycle}"], "--input"),
    (["images", "--ckpt", "{dcgan}", "--input", "{tmp}"], "--input"),
    (["images", "--ckpt", "{gray}", "--input", "{tmp}", "--direction", "BtoA"], "--direction"),
    (["interpolate", "--ckpt", "{dcgan}", "--seeds", "3"], "--seeds"),
    (["mix", "--ckpt", "{dcgan}"], "--ckpt"),
    (["mix", "--ckpt", "{stylegan}", "--crossover", "99"], "--crossover"),
    (["project", "--ckpt", "{dcgan}", "--target", "{tmp}/missing.png"], "--target"),
    (["project", "--ckpt", "{gray}", "--target", "{tmp}/missing.png"], "--ckpt"),
    (["ppl", "--ckpt", "{dcgan}", "--space", "w"], "--space"),
    (["html", "--ckpt", "{dcgan}", "--input", "{tmp}"], "--ckpt"),
])
def test_bad_input_names_the_argument(ckpts, tmp_path, capsys, argv: list[str], option: str) -> None:
    torch.save({"state_dict": {}, "epoch": 0}, tmp_path / "notgan.ckpt")
    (tmp_path / "empty.ckpt").write_bytes(b"")
    paths = {k: str(v) for k, v in ckpts.items()} | {"notgan": str(tmp_path / "notgan.ckpt"),
                                                     "empty": str(tmp_path / "empty.ckpt"), "tmp": str(tmp_path)}
    argv = [a.format(**paths) for a in argv]
    if "--outdir" not in argv and argv[0] != "ppl":
        argv += ["--outdir", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exit_info:
        generate.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err, err
    assert "Traceback" not in err
