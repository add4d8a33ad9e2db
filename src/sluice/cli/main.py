"""Entry point: the one place exit codes live, and the choice between the fast path
(sluice.cli.fast: common forms, no typer) and the typer app (sluice.cli.app).

Exit codes (documented in the README):
0 success · 1 a stage/check failed · 2 bad usage or configuration ·
3 refused by a budget · 4 a gate was inconclusive · 130 interrupted.
"""

from __future__ import annotations

import gc
import os
import signal
import sys

from sluice.errors import (
    BudgetRefused,
    ConfigError,
    DatabaseError,
    DataInvalid,
    Interrupted,
    PromotionRefused,
    PublishError,
    ResourceError,
    SluiceError,
    StageFailed,
    StoreError,
    UsageError,
)

EXIT_CODES: dict[type[SluiceError], int] = {
    StageFailed: 1,
    StoreError: 1,
    ConfigError: 2,
    UsageError: 2,
    ResourceError: 2,
    BudgetRefused: 3,
    PromotionRefused: 1,
    DatabaseError: 1,
    DataInvalid: 1,
    PublishError: 1,
    Interrupted: 130,
}

def exit_code_for(error: SluiceError) -> int:
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1


def _interrupt_on_sigterm(signum: int, frame: object) -> None:
    # CI systems cancel jobs with SIGTERM: stop stages the same way as Ctrl-C.
    raise KeyboardInterrupt


def _dispatch(argv: list[str]) -> object:
    from sluice.cli.fast import fast_command

    command = fast_command(argv)
    if command is not None:  # typer and click are not even imported
        return command()
    from sluice.cli.app import app

    # The completion variable is named here, not derived from the program's name, so
    # that `python -m sluice` answers a shell's completion requests too.
    return app(argv, complete_var="_SLUICE_COMPLETE", standalone_mode=False)


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    # A short-lived command: objects made while importing live to the end, so the
    # collector need not scan them again and again (≈10 % of a large plan).
    gc.freeze()
    try:
        code = _dispatch(sys.argv[1:])
    except SluiceError as error:
        from sluice.util.credentials import mask

        sys.stderr.write(f"error: {mask(error.render())}\n")
        sys.exit(exit_code_for(error))
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except BrokenPipeError:
        # The reader went away (`sluice models show m | head -1`): stop quietly, as
        # click does on the typer path; stdout goes nowhere so the final flush is silent.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except Exception as error:
        # Click's own exceptions (bad options, --help's exit): typer vendors
        # click, so they are recognised by shape rather than by class.
        if hasattr(error, "show") and hasattr(error, "exit_code"):
            error.show()
            sys.exit(2 if error.exit_code not in (0, 1) else error.exit_code)
        if hasattr(error, "exit_code"):
            sys.exit(error.exit_code)
        if type(error).__name__ == "Abort":  # click's, for Ctrl-C at a prompt
            sys.stderr.write("interrupted\n")
            sys.exit(130)
        raise
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
