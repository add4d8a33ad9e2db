"""Shell completion: `sluice --install-completion [bash|zsh|fish]`, `--show-completion`.

Typer's own completion options are off (sluice.cli.app): typer builds them on every
start, importing its completion machinery even for `sluice --help`. These two options
cost a click.Option each; the scripts and the completion protocol are still typer's
(``_SLUICE_COMPLETE=complete_bash`` and so on), loaded only when a shell asks, and
command names come from the lazy table (sluice.cli.lazy) like `sluice --help`'s.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import click

from sluice.errors import UsageError

PROG = "sluice"
COMPLETE_VAR = "_SLUICE_COMPLETE"
SHELLS = ("bash", "zsh", "fish")


def completion_options() -> list[click.Option]:
    """The two root options; SHELL may be left out, and the running shell is used."""
    def option(name: str, callback: Callable[[click.Context, click.Parameter, str | None], None],
               help: str) -> click.Option:
        # flag_value: `--show-completion` alone means "the shell I am running in".
        return click.Option([name], is_flag=False, flag_value="", default=None,
                            metavar="[bash|zsh|fish]", expose_value=False, is_eager=True,
                            callback=callback, help=help)

    return [option("--install-completion", _install,
                   "Install completion for SHELL (default: the current shell) in your "
                   "home folder."),
            option("--show-completion", _show,
                   "Print the completion script for SHELL, to install it yourself.")]


def script(shell: str) -> str:
    """The completion script for ``shell`` (typer's, for the program `sluice`)."""
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=shell)


def install(shell: str, home: Path) -> Path:
    """Write ``shell``'s script under ``home`` and have the shell load it; the script's path.

    The same places typer uses; the rc file gets one line appended, once — appended
    rather than replaced, as a dotfile is often a symlink into a dotfiles repository.
    """
    from sluice.util.fs import atomic_write_bytes

    rc_line = None
    if shell == "bash":
        path, rc, rc_line = (home / ".bash_completions" / f"{PROG}.sh", home / ".bashrc",
                             f"source '{home / '.bash_completions' / f'{PROG}.sh'}'")
    elif shell == "zsh":
        path, rc = home / ".zfunc" / f"_{PROG}", home / ".zshrc"
        rc_line = "fpath+=~/.zfunc; autoload -Uz compinit; compinit"
    else:  # fish loads ~/.config/fish/completions/ by itself
        path, rc = home / ".config" / "fish" / "completions" / f"{PROG}.fish", None
    atomic_write_bytes(path, (script(shell) + "\n").encode())
    if rc is not None and rc_line is not None:
        text = rc.read_text() if rc.is_file() else ""
        if rc_line not in text:
            with rc.open("a") as file:
                file.write(("\n" if text and not text.endswith("\n") else "") + rc_line + "\n")
    return path


def _shell(value: str) -> str:
    if not value:
        value = os.path.basename(os.environ.get("SHELL", ""))
        try:  # the shell actually running, not only the login shell
            import shellingham  # type: ignore[import-untyped]

            value = shellingham.detect_shell()[0]
        except Exception:  # shellingham absent or unsure: $SHELL it is
            pass
    if value not in SHELLS:
        raise UsageError(f"no completion for the shell {value or '(unknown)'!r}: name one of "
                         f"{', '.join(SHELLS)}, e.g. `sluice --install-completion bash`")
    return value


def _install(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is None or ctx.resilient_parsing:
        return
    shell = _shell(value)
    path = install(shell, Path.home())
    sys.stdout.write(f"{shell} completion for sluice installed in {path}; "
                     "it takes effect in new shells.\n")
    ctx.exit(0)


def _show(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is None or ctx.resilient_parsing:
        return
    sys.stdout.write(script(_shell(value)) + "\n")
    ctx.exit(0)


def enable_completion_classes() -> None:
    """Register typer's completion classes, whose output its scripts read."""
    from typer._completion_classes import completion_init

    completion_init()
