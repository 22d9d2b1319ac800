"""Every `snakemake` command of the README and of docs/*.md runs as written: each is dry-run (-n appended) here,
so the docs cannot rot. They run in a copy of the workflow whose MUSIC-AVQA overlay paths lead to the real annotation files
(../shared/data/music_avqa; val stands in for the train split, which is not shipped, and the v1 files for v2.0's);
no videos are needed for a dry run. A `--report FILE` command needs finished outputs, so its dry run leaves `--report FILE` out (the same
DAG); the end-to-end test builds a report for real (tests/test_pipeline_e2e.py).
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import MUSIC_AVQA_DIR

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
SHARED = MUSIC_AVQA_DIR
FENCE = re.compile(r"^\s*```[a-z]*\s*$")
INLINE = re.compile(r"`(snakemake [^`]+)`")


def readme_commands(text: str) -> list[str]:
    """The snakemake command lines of the README: in fenced code blocks, and inline code spans that are one."""
    commands, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced and line.strip().startswith("snakemake"):
            commands.append(line.strip())
        elif not fenced:
            commands += INLINE.findall(line)
    return list(dict.fromkeys(commands))


def dry_run_args(command: str) -> list[str]:
    """The command's arguments (shell words, comments dropped) for a dry run: -n appended, --report dropped."""
    words = shlex.split(command, comments=True)
    assert words[0] == "snakemake", command
    args = words[1:]
    if "--report" in args:
        at = args.index("--report")
        del args[at:at + 2]
    return [*args, "-n"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A copy of what the commands read, with the overlay's annotation paths leading to the real files."""
    work = tmp_path_factory.mktemp("readme")
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(ROOT / name, work / name)
    shutil.copytree(ROOT / "workflow", work / "workflow")
    shutil.copytree(ROOT / "tests/data", work / "tests/data")
    # Every annotation file an overlay names leads to a real one (val standing in for train).
    for overlay in (ROOT / "workflow/configs").glob("*.yaml"):
        files = (yaml.safe_load(overlay.read_text()).get("music_avqa") or {}).get("annotations", {})
        for split, path in files.items():
            link = work / path
            if not link.exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(SHARED / ("avqa-test.json" if split == "test" else "avqa-val.json"))
    return work


def run(workdir: Path, args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=workdir, capture_output=True,
                          text=True, timeout=600)


COMMANDS = list(dict.fromkeys(c for page in (README, *DOCS) for c in readme_commands(page.read_text())))


def test_the_readme_has_its_commands():
    assert len(COMMANDS) >= 10
    assert "snakemake --cores 2 results/table1.csv" in COMMANDS
    assert any("--workflow-profile workflow/profiles/slurm" in c for c in COMMANDS)
    assert any("--configfile workflow/configs/music_avqa.yaml" in c for c in COMMANDS)


@pytest.mark.skipif(not SHARED.exists(), reason="the real MUSIC-AVQA annotations (../shared) are not present")
@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_dry_runs(workdir, command):
    proc = run(workdir, dry_run_args(command))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{command}\n{out[-3000:]}"
    assert "This was a dry-run" in out or "Nothing to be done" in out, out[-2000:]


@pytest.mark.skipif(not SHARED.exists(), reason="the real MUSIC-AVQA annotations (../shared) are not present")
def test_a_target_after_configfile_is_the_error_this_guards_against(workdir):
    """`--configfile` takes every following word: the old README line read its target as a YAML file."""
    proc = run(workdir, ["--cores", "8", "--configfile", "workflow/configs/music_avqa.yaml", "results/table1.csv",
                         "-n"])
    assert proc.returncode != 0 and "results/table1.csv" in proc.stdout + proc.stderr


# --- the map and the paths the pages name ---------------------------------------------------------------------
# A repository path in prose or code: starts at a top-level folder (or is a top-level file) of this repository.
TOP = ("avqa", "docs", "workflow", "tests", "benchmarks", "scripts", "constraints", "envs", ".ci")
PATH = re.compile(r"(?<![\w./-])((?:%s)/[\w./-]*[\w/]|Snakefile|config\.yaml|pyproject\.toml)"
                  % "|".join(re.escape(t) for t in TOP))


def named_paths(text: str) -> set[str]:
    """Repository paths a page names; patterns ({wildcards}, *) and outputs under results/ are not paths."""
    found = set()
    for match in PATH.finditer(text):
        path = match.group(1).rstrip("./")
        end = match.end()
        if end < len(text) and text[end] in "{*<":
            continue
        found.add(path)
    return found


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.name)
def test_every_path_a_page_names_exists(page):
    missing = sorted(p for p in named_paths(page.read_text()) if not (ROOT / p).exists())
    assert not missing, f"{page.name} names paths that are not in the repository: {missing}"


def test_the_path_finder_finds_paths_and_skips_patterns():
    text = ("see avqa/models/tass.py and `docs/models.md`, results/table1.csv, avqa/features/{encoder}.zarr, "
            "tests/*.py, config.yaml.")
    assert named_paths(text) == {"avqa/models/tass.py", "docs/models.md", "config.yaml"}


def test_every_module_of_the_package_is_in_the_readmes_map():
    text = README.read_text()
    code_map = text[text.index("## The code"):text.index("## Documentation")]
    words = set(re.findall(r"[\w]+", code_map))
    modules = sorted(p.relative_to(ROOT / "avqa") for p in (ROOT / "avqa").rglob("*.py"))
    unnamed = [str(m) for m in modules if m.stem not in words]
    assert not unnamed, f"modules missing from README.md's map of the code: {unnamed}"
    folders = sorted({str(m.parent) for m in modules if str(m.parent) != "."})
    assert all(f.split("/")[-1] in words for f in folders), folders
