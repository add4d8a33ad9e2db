"""End-to-end: shell completion — the scripts, the completion protocol, installing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import sluice


def _complete(tmp_path: Path, env: dict[str, str]) -> list[str]:
    # As the shell scripts call it: no arguments, the command line in the environment.
    return sluice(tmp_path, env=env).stdout.split()


def test_bash_completes_commands_and_subcommands_from_the_lazy_table(tmp_path: Path) -> None:
    def bash(words: str) -> list[str]:
        return _complete(tmp_path, {"_SLUICE_COMPLETE": "complete_bash", "COMP_WORDS": words,
                                    "COMP_CWORD": str(len(words.split()) - 1)})

    assert bash("sluice da") == ["data"]
    assert bash("sluice data st") == ["status"]
    assert "promote" in bash("sluice pro")


def test_zsh_and_fish_complete_command_names(tmp_path: Path) -> None:
    zsh = sluice(tmp_path, env={"_SLUICE_COMPLETE": "complete_zsh",
                                "_TYPER_COMPLETE_ARGS": "sluice da"}).stdout
    assert '"data"' in zsh
    fish = sluice(tmp_path, env={"_SLUICE_COMPLETE": "complete_fish",
                                 "_TYPER_COMPLETE_FISH_ACTION": "get-args",
                                 "_TYPER_COMPLETE_ARGS": "sluice da"}).stdout
    assert fish.split("\t")[0] == "data"


def test_show_completion_prints_the_bash_script(tmp_path: Path) -> None:
    script = sluice(tmp_path, "--show-completion", "bash").stdout
    assert "_SLUICE_COMPLETE=complete_bash" in script
    assert "complete -o default -F _sluice_completion sluice" in script


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_bash_script_completes_in_a_real_bash(tmp_path: Path) -> None:
    script = sluice(tmp_path, "--show-completion", "bash").stdout
    (tmp_path / "sluice.bash").write_text(script)
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    result = subprocess.run(
        ["bash", "-c", "source ./sluice.bash; COMP_WORDS=(sluice da); COMP_CWORD=1; "
                       "_sluice_completion sluice; echo \"${COMPREPLY[@]}\""],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PATH": path})
    assert result.stdout.split() == ["data"], result.stderr


def test_install_completion_writes_only_under_home_and_only_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("alias ll='ls -l'")
    for _ in range(2):
        out = sluice(tmp_path, "--install-completion", "bash", env={"HOME": str(home)}).stdout
        assert "bash completion" in out
    script = home / ".bash_completions" / "sluice.sh"
    assert "_SLUICE_COMPLETE=complete_bash" in script.read_text()
    rc = (home / ".bashrc").read_text()
    assert rc.startswith("alias ll='ls -l'\n") and rc.count(f"source '{script}'") == 1
    sluice(tmp_path, "--install-completion", "zsh", env={"HOME": str(home)})
    sluice(tmp_path, "--install-completion", "fish", env={"HOME": str(home)})
    assert (home / ".zfunc" / "_sluice").is_file()
    assert "compinit" in (home / ".zshrc").read_text()
    assert (home / ".config" / "fish" / "completions" / "sluice.fish").is_file()
    written = {p.relative_to(home).as_posix() for p in home.rglob("*") if p.is_file()}
    assert written == {".bashrc", ".bash_completions/sluice.sh", ".zshrc", ".zfunc/_sluice",
                       ".config/fish/completions/sluice.fish"}


def test_an_unknown_shell_is_a_usage_error(tmp_path: Path) -> None:
    result = sluice(tmp_path, "--show-completion", "tcsh", check=2)
    assert "bash, zsh, fish" in result.stderr
