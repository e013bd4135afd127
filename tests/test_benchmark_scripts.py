"""Every script in benchmarks/ imports (their names from the library still exist) and parses --help.

The benchmarks run for minutes to hours and are not run by the suite; a renamed or removed library
function would otherwise break them silently until someone reruns a table.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for p in (ROOT / "benchmarks").glob("*.py") if not p.name.startswith("_"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_benchmark_script_imports_and_parses_help(script, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    monkeypatch.syspath_prepend(str(ROOT))
    name = f"benchmark_{script.stem}"
    spec = importlib.util.spec_from_file_location(name, script)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(sys, "argv", [str(script), "--help"])
    spec.loader.exec_module(module)  # the __main__ guard keeps the benchmark itself from running
    main = getattr(module, "main", None)
    assert callable(main), f"{script.name} has no main()"
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"]) if _takes_argv(main) else main()
    assert exit_info.value.code == 0
    assert "usage" in capsys.readouterr().out.lower()


def _takes_argv(main: object) -> bool:
    import inspect

    return len(inspect.signature(main).parameters) > 0
