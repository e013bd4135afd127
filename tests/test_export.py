"""load_generator's guards: only registered (or explicitly allowed) classes are imported; broken files are named."""

from __future__ import annotations

import sys

import pytest
import torch

from gan_modules import load_generator
from gan_modules.export import class_path_of
from gan_modules.nets import DCGANGenerator

PAYLOAD = '''
import pathlib, torch
pathlib.Path({marker!r}).write_text("imported")  # import-time side effect


class Payload(torch.nn.Module):
    def __init__(self, size: int = 2) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(size))
'''


def _checkpoint(path, class_path: str, init_args: dict, state: dict) -> None:
    gan = {"generator_spec": {"class_path": class_path, "init_args": init_args}, "generator_key": "generator",
           "latent_dim": 2, "num_classes": 0, "sample_shape": [2]}
    torch.save({"state_dict": {f"generator.{k}": v for k, v in state.items()}, "gan": gan}, path)


def test_a_crafted_class_path_is_refused_before_its_module_is_imported(tmp_path, monkeypatch) -> None:
    marker = tmp_path / "imported.txt"
    (tmp_path / "crafted_payload_module.py").write_text(PAYLOAD.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path))
    ckpt = tmp_path / "crafted.ckpt"
    _checkpoint(ckpt, "crafted_payload_module.Payload", {"size": 2}, {"weight": torch.ones(2)})
    with pytest.raises(PermissionError, match="crafted_payload_module.Payload") as info:
        load_generator(ckpt)
    assert str(ckpt) in str(info.value) and "allowed_classes" in str(info.value)
    assert not marker.exists() and "crafted_payload_module" not in sys.modules  # nothing ran
    # a caller who trusts the file says so, by path
    try:
        net = load_generator(ckpt, allowed_classes=["crafted_payload_module.Payload"])
        assert marker.exists() and torch.equal(net.weight, torch.ones(2))
    finally:
        sys.modules.pop("crafted_payload_module", None)


def test_an_unregistered_network_subclass_needs_allowing(tmp_path) -> None:
    class MyGenerator(DCGANGenerator):  # a user's own network: a Network, but not in nets.NETWORKS
        pass

    net = DCGANGenerator((1, 32, 32), latent_dim=4, base_channels=4)
    ckpt = tmp_path / "mine.ckpt"
    _checkpoint(ckpt, class_path_of(MyGenerator), net.init_spec["init_args"], net.state_dict())
    with pytest.raises(PermissionError, match="MyGenerator"):
        load_generator(ckpt)
    _checkpoint(ckpt, class_path_of(DCGANGenerator), net.init_spec["init_args"], net.state_dict())
    assert isinstance(load_generator(ckpt), DCGANGenerator)  # registered: no permission needed


def test_empty_and_truncated_checkpoints_name_the_file(tmp_path) -> None:
    net = DCGANGenerator((1, 32, 32), latent_dim=4, base_channels=4)
    good = tmp_path / "good.ckpt"
    _checkpoint(good, class_path_of(DCGANGenerator), net.init_spec["init_args"], net.state_dict())
    empty, truncated, text = tmp_path / "empty.ckpt", tmp_path / "truncated.ckpt", tmp_path / "text.ckpt"
    empty.write_bytes(b"")
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="empty") as info:
        load_generator(empty)
    assert str(empty) in str(info.value)
    for path in (truncated, text):
        with pytest.raises(ValueError) as info:
            load_generator(path)
        assert str(path) in str(info.value)
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        load_generator(tmp_path / "missing.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "plain.ckpt")
    with pytest.raises(KeyError, match="not written by a GANModule"):
        load_generator(tmp_path / "plain.ckpt")
