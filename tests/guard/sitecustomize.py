"""Loaded by every Python subprocess a test starts (PYTHONPATH points here).

When SLUICE_TEST_ALLOWED_ROOTS is set it installs the same write guard as the
test process: a write outside the allowed folders is appended to the file named
by SLUICE_TEST_VIOLATIONS, and the test that started the process fails.
"""

import os

if os.environ.get("SLUICE_TEST_ALLOWED_ROOTS"):
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import writeguard

    writeguard.install(os.environ["SLUICE_TEST_ALLOWED_ROOTS"].split(os.pathsep),
                       os.environ.get("SLUICE_TEST_VIOLATIONS"))
