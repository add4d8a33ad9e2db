"""End-to-end: hostile or broken YAML in a project file is exit 2 with file:line, never a traceback.

Every command runs under a 2 GiB address-space limit: the alias bomb below
expands to 9**9 values (8.8 GB before the loader was bounded), so a regression
fails with a MemoryError instead of taking the machine's memory.
"""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from tests.conftest import sluice

STAGES = "stages:\n  train:\n    cmd: echo hi > model.txt\n    outs: {model: model.txt}\n"


def _alias_bomb() -> str:
    """Nine anchors, each used nine times by the next; `a5` (line 6) is the first too big."""
    lines = ["a0: &a0 [" + ", ".join(["lol"] * 9) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


def _two_gib() -> None:
    limit = 2 << 30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


CASES = {
    "alias-bomb-in-config": ({"sluice.yaml": STAGES + _alias_bomb()}, "sluice.yaml:10",
                             "aliases (`*name`) expand this value to 597,871 values"),
    "alias-bomb-in-params": ({"sluice.yaml": STAGES, "params.yaml": _alias_bomb()},
                             "params.yaml:6", "aliases (`*name`) expand this value"),
    "nul-in-config": ({"sluice.yaml": STAGES.replace("echo hi", "echo\0hi")}, "sluice.yaml:3",
                      "a NUL character U+0000 is not allowed in YAML"),
    "nul-in-params": ({"sluice.yaml": STAGES, "params.yaml": "lr: 0.1\nname: a\0b\n"},
                      "params.yaml:2", "a NUL character U+0000"),
    "python-tag-in-config": (
        {"sluice.yaml": STAGES + "x: !!python/object/apply:os.system ['touch pwned']\n"},
        "sluice.yaml:5", "unsupported YAML tag `!!python/object/apply:os.system`"),
    "custom-tag-in-params": ({"sluice.yaml": STAGES, "params.yaml": "lr: !foo 0.1\n"},
                             "params.yaml:1", "unsupported YAML tag `!foo`"),
    "reference-in-output-path": (
        {"sluice.yaml": STAGES.replace("{model: model.txt}", "{model: 'm-${tier.name}.txt'}")},
        "sluice.yaml:4", "sluice does not interpolate paths"),
    "reference-in-alias-name": (
        {"sluice.yaml": STAGES + "tiers:\n  merge:\n    promote: prod-${tier.name}\n"},
        "sluice.yaml:7", "sluice does not interpolate alias names"),
}


@pytest.mark.parametrize("command", ["plan", "run"])
@pytest.mark.parametrize("case", list(CASES))
def test_bad_yaml_is_exit_2_with_file_and_line(repo: Path, case: str, command: str) -> None:
    files, where, message = CASES[case]
    for name, text in files.items():
        (repo / name).write_text(text, encoding="utf-8")
    result = sluice(repo, command, check=None, preexec_fn=_two_gib)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert where in result.stderr and message in result.stderr, output
    assert "Traceback" not in output and "MemoryError" not in output
    assert not (repo / "pwned").exists() and not (repo / "model.txt").exists()


def test_a_bad_sluice_lock_is_exit_2_with_file_and_line(repo: Path) -> None:
    # Pins go through the same loader (and the same limits) as sluice.yaml.
    (repo / "sluice.yaml").write_text(STAGES, encoding="utf-8")
    (repo / "sluice.lock").write_text("version: 1\n" + _alias_bomb(), encoding="utf-8")
    result = sluice(repo, "data", "status", check=2, preexec_fn=_two_gib)
    assert "sluice.lock:7" in result.stderr and "aliases (`*name`) expand" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
