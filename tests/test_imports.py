"""The pieces another project takes alone import without Lightning (and without jsonargparse)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TORCH_ONLY = ("gan_modules.nets", "gan_modules.losses", "gan_modules.regularizers", "callbacks.metrics",
              "gan_modules.augment", "gan_modules.discriminator_augment", "gan_modules.latent_prior")


def test_networks_losses_penalties_and_metrics_import_without_lightning() -> None:
    # A None entry in sys.modules makes any import of that name raise ImportError, as if not installed.
    code = (
        "import sys, time, json, importlib\n"
        "for name in ('lightning', 'pytorch_lightning', 'lightning_fabric', 'jsonargparse'):\n"
        "    sys.modules[name] = None\n"
        "start = time.perf_counter()\n"
        "importlib.import_module('gan_modules.nets')\n"
        "nets_seconds = time.perf_counter() - start\n"
        f"for module in {TORCH_ONLY!r}:\n"
        "    importlib.import_module(module)\n"
        "import gan_modules, callbacks\n"
        "print(json.dumps({'nets_seconds': nets_seconds, 'networks': len(gan_modules.nets.NETWORKS),\n"
        "                  'frechet': callable(callbacks.metrics.frechet_distance)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["networks"] > 0 and result["frechet"]
    # cold (fresh interpreter) import time, for the reader of `pytest -s`; benchmarks/import_time.py measures it
    print(f"cold import of gan_modules.nets without Lightning: {result['nets_seconds']:.2f} s")


def test_package_names_still_resolve_lazily() -> None:
    import callbacks
    import gan_modules

    assert gan_modules.GAN.__name__ == "GAN" and callbacks.SampleGrid.__name__ == "SampleGrid"
    assert "GAN" in dir(gan_modules)
    with pytest.raises(AttributeError, match="NoSuchFamily"):
        gan_modules.NoSuchFamily  # noqa: B018
