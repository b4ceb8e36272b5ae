"""The top-level package exports exactly what ``__all__`` promises."""

import toolgym


def test_all_exports_exist_and_are_sorted():
    assert toolgym.__all__ == sorted(toolgym.__all__)
    for name in toolgym.__all__:
        assert getattr(toolgym, name) is not None


def test_import_registers_the_builtin_envs():
    import gymnasium

    assert "toolgym/HumanEval-v0" in gymnasium.registry
