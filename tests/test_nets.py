"""Network contract: shapes, ranges, gradients, init_spec round-trip, input checks, initialisation."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from gan_modules import nets
from gan_modules.nets import (
    NETWORKS,
    DCGANDiscriminator,
    DCGANGenerator,
    MLPDiscriminator,
    MLPGenerator,
    Network,
    build_network,
    dcgan_init,
    register_network,
)

MLP_SHAPES = [(2,), (1, 32, 32), (3, 64, 64)]
DCGAN_SHAPES = [(1, 32, 32), (3, 32, 32), (1, 64, 64), (3, 64, 64)]
CONDITIONAL = {cls for cls in NETWORKS.values()
               if cls.__module__ == nets.conditional.__name__ or cls.__name__.startswith("Conditional")}


def _cases() -> list:
    cases = []
    for name, cls in NETWORKS.items():
        shapes = getattr(cls, "test_shapes", None) or (MLP_SHAPES if "MLP" in name else DCGAN_SHAPES)
        for shape in shapes:
            for kwargs in cls.small_configs:
                ident = f"{name}-{'x'.join(map(str, shape))}-" + "-".join(f"{k}={v}" for k, v in kwargs.items())
                cases.append(pytest.param(cls, shape, kwargs, id=ident))
    return cases


CASES = _cases()


def _input(net: Network, n: int = 3) -> torch.Tensor | tuple[torch.Tensor, ...]:
    if hasattr(net, "example_inputs"):  # image-to-image networks: (image,), (image, mask) or (image, condition)
        return net.example_inputs(n)
    if net.latent_dim:
        return torch.randn(n, net.latent_dim)
    return torch.rand(n, *net.sample_shape) * 2 - 1


def _call(net: Network, x: torch.Tensor) -> torch.Tensor:
    """``net(x)``, or ``net(x, labels)`` for a conditional network; a tuple output (AC-GAN) is concatenated."""
    if isinstance(x, tuple):  # the arguments of an image-to-image network
        return net(*x)
    out = net(x, torch.arange(len(x)) % net.num_classes) if net.num_classes else net(x)
    return torch.cat([out[0][:, None], out[1]], 1) if isinstance(out, tuple) else out


def test_networks_registry_is_complete() -> None:
    # every concrete Network in nets/ is registered (a new network is tested the day it is added)
    folder = Path(nets.__file__).parent
    for path in folder.glob("*.py"):
        module = importlib.import_module(f"gan_modules.nets.{path.stem}")
        defined = {obj for obj in vars(module).values() if isinstance(obj, type) and issubclass(obj, Network)
                   and obj.__module__ == module.__name__ and not obj.__name__.startswith("_")
                   and obj not in (nets.ImageToImageNetwork, nets.stackgan.TextConditionedGenerator, Network)}
        assert defined <= set(NETWORKS.values()), f"{path.name}: {defined - set(NETWORKS.values())} not registered"
    assert all(cls.small_configs for cls in NETWORKS.values())


def test_register_network_rejects_what_it_cannot_test() -> None:
    with pytest.raises(ValueError, match="at least one small configuration"):
        register_network([])
    with pytest.raises(TypeError, match="not a gan_modules.nets.Network"):
        register_network([{}])(nn.Linear)
    with pytest.raises(ValueError, match="two networks are called MLPGenerator"):
        register_network([{}])(type("MLPGenerator", (Network,), {}))


@pytest.mark.parametrize("cls", NETWORKS.values(), ids=NETWORKS.keys())
def test_constructor_signature(cls: type[Network]) -> None:
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert params[0].name == "sample_shape" and params[0].default is not inspect.Parameter.empty
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params)  # no *args/**kwargs
    assert all(p.default is not inspect.Parameter.empty for p in params)
    if cls in CONDITIONAL:  # train.py links data.num_classes into it
        assert params[1].name == "num_classes"
    else:  # unconditional networks lack it, so the link is dropped for them
        assert "num_classes" not in {p.name for p in params}


@pytest.mark.parametrize(("cls", "shape", "kwargs"), CASES)
def test_forward_shape_range_and_gradients(cls: type[Network], shape: tuple[int, ...], kwargs: dict) -> None:
    torch.manual_seed(0)
    net = cls(shape, **kwargs)
    assert net.sample_shape == shape and net.num_classes == kwargs.get("num_classes", 0)
    is_generator = net.latent_dim > 0 or getattr(net, "is_generator", False)
    out = _call(net, _input(net))
    if is_generator:
        assert out.shape == (3, *shape)
        if len(shape) == 3:
            assert out.min() >= -1 and out.max() <= 1
    elif cls is nets.ACGANDiscriminator:  # real/fake logit beside the class logits
        assert out.shape == (3, 1 + net.num_classes)
    elif out.dim() == 4:  # a PatchGAN logit map
        assert out.shape[:2] == (3, 1)
    else:
        assert out.shape == (3,)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    inactive = net.inactive_parameters() if hasattr(net, "inactive_parameters") else set()  # progressive growing
    for name, p in net.named_parameters():
        if name in inactive:  # layers of other resolutions: no gradient at all, so Adam skips them
            assert p.grad is None, name
            continue
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize(("cls", "shape", "kwargs"), CASES)
def test_init_spec_round_trip(cls: type[Network], shape: tuple[int, ...], kwargs: dict) -> None:
    net = cls(shape, **kwargs)
    spec = json.loads(json.dumps(net.init_spec))  # plain data, as stored in a checkpoint
    rebuilt = build_network(spec)
    assert type(rebuilt) is cls and rebuilt.init_spec == net.init_spec
    rebuilt.load_state_dict(net.state_dict(), strict=True)
    net.eval(), rebuilt.eval()
    x = _input(net)
    with torch.no_grad():
        assert torch.allclose(_call(net, x), _call(rebuilt, x), atol=1e-6)


@pytest.mark.parametrize("cls", [DCGANGenerator, DCGANDiscriminator])
@pytest.mark.parametrize("shape", [(1, 48, 48), (1, 32, 64), (3, 4, 4), (32, 32), (0, 32, 32)])
def test_dcgan_rejects_bad_sample_shape(cls: type[Network], shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="sample_shape"):
        cls(shape, base_channels=8)


@pytest.mark.parametrize("cls", [MLPGenerator, MLPDiscriminator])
def test_mlp_rejects_bad_sample_shape(cls: type[Network]) -> None:
    with pytest.raises(ValueError, match="sample_shape"):
        cls((2, 0))
    with pytest.raises(ValueError, match="sample_shape"):
        cls(())


def test_discriminator_input_shape_error_names_expected_shape() -> None:
    d = DCGANDiscriminator((1, 32, 32), base_channels=8)
    with pytest.raises(ValueError, match=r"DCGANDiscriminator expects \[N, 1, 32, 32\], got \[N, 3, 32, 32\]"):
        d(torch.randn(2, 3, 32, 32))
    with pytest.raises(ValueError, match=r"MLPDiscriminator expects \[N, 2\], got \[N, 3\]"):
        MLPDiscriminator((2,))(torch.randn(4, 3))


@pytest.mark.parametrize("cls", [MLPGenerator, DCGANGenerator])
def test_generator_latent_shape_error(cls: type[Network]) -> None:
    g = cls(latent_dim=8) if cls is MLPGenerator else cls(latent_dim=8, base_channels=8)
    with pytest.raises(ValueError, match=rf"{cls.__name__} expects z \[N, 8\], got \[N, 9\]"):
        g(torch.randn(2, 9))


def test_unknown_options_raise_listing_valid_values() -> None:
    with pytest.raises(ValueError, match="nearest_conv, transposed"):
        DCGANGenerator(upsample="bilinear", base_channels=8)
    with pytest.raises(ValueError, match="dcgan, default"):
        DCGANDiscriminator(init="xavier", base_channels=8)
    with pytest.raises(ValueError, match="unknown norm"):
        DCGANDiscriminator(norm="weird", base_channels=8)


def test_mlp_output_activation_auto() -> None:
    assert isinstance(MLPGenerator((2,)).output_activation, nn.Identity)
    assert isinstance(MLPGenerator((1, 8, 8)).output_activation, nn.Tanh)
    assert isinstance(MLPGenerator((2,), output_activation="tanh").output_activation, nn.Tanh)


def test_spectral_norm_wraps_every_layer() -> None:
    for net in (MLPDiscriminator(spectral_norm=True), DCGANDiscriminator(base_channels=8, spectral_norm=True)):
        layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
    assert not any(parametrize.is_parametrized(m) for m in DCGANDiscriminator(base_channels=8).modules())


def test_dcgan_structure() -> None:
    g = DCGANGenerator((3, 64, 64), latent_dim=16, base_channels=8)
    convs = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [c.out_channels for c in convs] == [64, 32, 16, 8, 3]  # 4x4 with C*8, halving to C, then RGB
    assert not any(isinstance(m, nn.Upsample) for m in g.modules())
    g = DCGANGenerator((1, 32, 32), base_channels=8, upsample="nearest_conv")
    assert sum(isinstance(m, nn.Upsample) for m in g.modules()) == 3
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in g.modules())
    d = DCGANDiscriminator((3, 64, 64), base_channels=8)
    assert [c.out_channels for c in d.modules() if isinstance(c, nn.Conv2d)] == [8, 16, 32, 64, 1]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == 3  # none on the first layer


def test_dcgan_init_statistics() -> None:
    torch.manual_seed(0)
    d = DCGANDiscriminator((3, 64, 64), base_channels=64)
    big = [m for m in d.modules() if isinstance(m, nn.Conv2d)][-2]  # 256 -> 512, 4x4: 2M weights
    assert big.weight.std().item() == pytest.approx(0.02, rel=0.02)
    assert big.weight.mean().abs().item() < 1e-3
    bn = [m for m in d.modules() if isinstance(m, nn.BatchNorm2d)][-1]
    assert bn.weight.mean().item() == pytest.approx(1.0, abs=0.01) and torch.all(bn.bias == 0)
    default = DCGANDiscriminator((3, 64, 64), base_channels=64, init="default")
    big_default = [m for m in default.modules() if isinstance(m, nn.Conv2d)][-2]
    assert big_default.weight.std().item() < 0.015  # PyTorch's kaiming-uniform, not N(0, 0.02)


def test_dcgan_init_on_spectral_norm_layer_sets_original_weight() -> None:
    conv = torch.nn.utils.parametrizations.spectral_norm(nn.Conv2d(64, 64, 4))
    dcgan_init(conv)
    assert conv.parametrizations.weight.original.std().item() == pytest.approx(0.02, rel=0.05)


def test_nets_package_imports_only_torch() -> None:
    # The CLI and checkpoint loaders import networks without lightning: torch and the stdlib only.
    allowed_roots = set(sys.stdlib_module_names) | {"torch"}
    for path in Path(nets.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = {node.module.split(".")[0]}
            else:
                continue
            assert roots <= allowed_roots, f"{path.name} imports {roots - allowed_roots}"
