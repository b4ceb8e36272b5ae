"""The top-level package exports exactly what ``__all__`` promises."""

import toolgym


def test_all_exports_exist_and_are_sorted():
    assert toolgym.__all__ == sorted(toolgym.__all__)
    for name in toolgym.__all__:
        assert getattr(toolgym, name) is not None


def test_import_registers_the_builtin_envs():
    import gymnasium

    assert "toolgym/HumanEval-v0" in gymnasium.registry


def test_trainers_exports_resolve_lazily_to_their_modules_objects():
    import ast
    import importlib
    import subprocess
    import sys
    from pathlib import Path

    import toolgym.trainers as trainers

    assert trainers.__all__ == sorted(trainers.__all__) == sorted(trainers._EXPORTS)
    for name, module in trainers._EXPORTS.items():
        defining = importlib.import_module(f"toolgym.trainers.{module}")
        assert getattr(trainers, name) is getattr(defining, name), name
    # the names a type checker sees (the TYPE_CHECKING imports) are the same
    tree = ast.parse(Path(trainers.__file__).read_text())
    guarded = next(n for n in tree.body if isinstance(n, ast.If))
    typed = {alias.name for imp in guarded.body for alias in imp.names}
    assert typed == set(trainers.__all__)
    # importing the package imports no trainer (the CLI's --help and `toolgym plot` stay light)
    probe = "import sys, toolgym.trainers; print('toolgym.trainers.base' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"
