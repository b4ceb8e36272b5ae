"""A wheel of toolgym, installed non-editable into a fresh venv, works on its own.

The venv gets the wheel and nothing else: its dependencies come from the
test's own interpreter through a ``.pth`` line naming that interpreter's
site-packages (whose ``.pth`` files, the editable install of this checkout
among them, are not run from there), and every command runs outside the
checkout with no ``PYTHONPATH``, so only the installed copy of toolgym can
answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import importlib.metadata, json, pathlib
import toolgym
from toolgym.sandbox import images
package = pathlib.Path(toolgym.__file__).parent
print(json.dumps({
    "package": str(package),
    "docker_dir": str(images.docker_dir()),
    "names": images.image_names(),
    "hashes": {n: images.context_hash(images.image_folder(n), "sha256:probe")
               for n in images.image_names()},
    "base_tag": images.default_base_tag(),
    "version": toolgym.__version__,
    "metadata_version": importlib.metadata.version("toolgym"),
    "py_typed": (package / "py.typed").is_file(),
}))
"""


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding only a wheel of this checkout; returns its folder."""
    tmp = tmp_path_factory.mktemp("packaging")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(ROOT)],
        check=True,
    )
    (wheel,) = (tmp / "dist").glob("toolgym-*.whl")
    env = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    python = env / "bin" / "python"
    own = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    paths = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (Path(own) / "toolgym-test-deps.pth").write_text("".join(f"{p}\n" for p in paths))
    subprocess.run(
        [*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        check=True,
    )
    return env


def run_installed(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run one of the venv's programs outside the checkout, without PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=120,
    )


@pytest.fixture(scope="module")
def probe(venv: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """What the installed package says about itself (see PROBE)."""
    proc = run_installed(venv, "python", "-c", PROBE, cwd=tmp_path_factory.mktemp("cwd"))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_installed_package_is_the_wheel_not_the_checkout(venv: Path, probe: dict) -> None:
    assert Path(probe["package"]).is_relative_to(venv)
    assert Path(probe["docker_dir"]) == Path(probe["package"]) / "_docker"


def test_the_wheel_carries_every_image_with_the_checkouts_hashes(probe: dict) -> None:
    from toolgym.sandbox import images

    checkout = ROOT / "docker"
    names = sorted(p.parent.name for p in checkout.glob("*/Dockerfile"))
    assert probe["names"] == names
    assert probe["hashes"] == {n: images.context_hash(checkout / n, "sha256:probe") for n in names}
    assert probe["base_tag"] == images.default_base_tag()


def test_one_version_and_a_py_typed_marker(probe: dict) -> None:
    import toolgym

    assert "version" not in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert probe["version"] == probe["metadata_version"] == toolgym.__version__
    assert probe["py_typed"]


def test_the_installed_cli_offers_sandbox_build(venv: Path, tmp_path: Path) -> None:
    proc = run_installed(venv, "toolgym", "sandbox", "build", "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Build the sandbox images" in proc.stdout


@pytest.mark.docker
def test_the_installed_cli_finds_the_checkouts_python_image_up_to_date(
    venv: Path, python_image: str, tmp_path: Path
) -> None:
    proc = run_installed(venv, "toolgym", "sandbox", "build", "python", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("python"))
    assert python_image in line and "up to date" in line
