"""The install contract: pyproject.toml declares ranges, constraints/py3XX.txt pins one exact set inside them, and
that set is closed (everything the package needs, transitively, is pinned)."""
from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINT_FILES = sorted((ROOT / "constraints").glob("py3*.txt"))


def load_freeze():
    spec = importlib.util.spec_from_file_location("freeze_constraints", ROOT / "scripts" / "freeze_constraints.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pins(path: Path) -> dict[str, Version]:
    """{canonical name: pinned version}; every line a comment or an exact `name==version`, each name once."""
    pinned = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==" and not req.marker and not req.extras, \
            f"{path.name}:{number}: not an exact pin: {line!r}"
        name = canonicalize_name(req.name)
        assert name not in pinned, f"{path.name}:{number}: {name} pinned twice"
        pinned[name] = Version(specs[0].version)
    return pinned


def python_of(path: Path) -> str:
    """constraints/py312.txt -> "3.12"."""
    digits = path.stem.removeprefix("py")
    return f"{digits[0]}.{digits[1:]}"


def test_there_is_a_constraints_file_per_supported_python():
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert "3.11" in [python_of(p) for p in CONSTRAINT_FILES]
    for path in CONSTRAINT_FILES:
        assert Requirement(f"python{requires}").specifier.contains(python_of(path)), \
            f"{path.name} pins a set for a Python that pyproject's requires-python {requires} excludes"


@pytest.mark.parametrize("path", CONSTRAINT_FILES, ids=lambda p: p.name)
def test_constraints_pin_every_declared_dependency_inside_its_range(path):
    freeze = load_freeze()
    pinned = pins(path)
    python = python_of(path)
    environment = default_environment() | {"python_version": python, "python_full_version": f"{python}.0",
                                           "extra": ""}
    for req in freeze.project_requirements(ROOT / "pyproject.toml", list(freeze.EXTRAS)):
        if req.marker is not None and not req.marker.evaluate(environment):
            continue
        name = canonicalize_name(req.name)
        assert name in pinned, f"{path.name} does not pin {name}, which pyproject.toml requires ({req})"
        assert req.specifier.contains(pinned[name], prereleases=True), \
            f"{path.name} pins {name}=={pinned[name]}, outside pyproject.toml's range {req}"


def test_pins_reject_a_range_or_a_duplicate(tmp_path):
    loose = tmp_path / "py311.txt"
    loose.write_text("# header\nnumpy>=2\n")
    with pytest.raises(AssertionError, match="not an exact pin"):
        pins(loose)
    loose.write_text("numpy==2.4.6\nNumPy==2.4.6\n")
    with pytest.raises(AssertionError, match="pinned twice"):
        pins(loose)


def test_closure_follows_requirements_and_their_markers():
    """pytest's own requirements are in its closure at their installed versions; those its markers exclude here
    (colorama is Windows-only) are not."""
    from importlib import metadata
    freeze = load_freeze()
    closure = freeze.installed_closure([Requirement("pytest>=8")])
    assert closure["pytest"] == metadata.version("pytest")
    assert closure["pluggy"] == metadata.version("pluggy")
    assert "iniconfig" in closure
    if sys.platform != "win32":
        assert "colorama" not in closure


def test_closure_names_what_is_missing():
    freeze = load_freeze()
    with pytest.raises(SystemExit, match="no-such-dist-avqa.*needed by pyproject.toml"):
        freeze.installed_closure([Requirement("no-such-dist-avqa>=1")])


def test_this_environment_is_the_pinned_set():
    """The environment the tests run in (scripts/setup.sh made it with the constraints file) is exactly the pinned
    set for its Python: a dependency added to pyproject.toml without regenerating the file, or an environment that
    drifted, fails here."""
    path = ROOT / "constraints" / f"py{sys.version_info[0]}{sys.version_info[1]}.txt"
    if not path.is_file():
        pytest.skip(f"no {path.name}: this Python is not one scripts/setup.sh supports (3.11, 3.12)")
    freeze = load_freeze()
    installed = {name: Version(version) for name, version in
                 freeze.installed_closure(freeze.project_requirements(ROOT / "pyproject.toml", list(freeze.EXTRAS))).items()}
    pinned = pins(path)
    drifted = {name: (str(pinned.get(name)), str(version)) for name, version in installed.items()
               if pinned.get(name) != version}
    assert not drifted, (f"{path.name} (pinned, installed) differ: {drifted}; regenerate it "
                         f"(python scripts/freeze_constraints.py > {path.relative_to(ROOT)}) or run scripts/setup.sh")
