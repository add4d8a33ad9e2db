"""Which CI lines install sluice from a package index, and how the generator pins them."""

from __future__ import annotations

import pytest

from sluice.ci.install import pin_install, unsafe_installs
from sluice.errors import UsageError

FILE = """\
    - pip install -e .
    - pip install -e '.[dev]' -r requirements.txt
    - pip install sluice -r requirements.txt
    - python -m pip install --upgrade pip && pip install "sluice-ml[s3]"
    - pip install sluice-ml==0.1.0 -r requirements.txt
    - pip install -r requirements.txt sluice_ML>=0.1
    - pip install --index-url https://pypi.internal/simple sluice-ml===0.1.0
    sh 'python -m venv .venv && . .venv/bin/activate && pip install sluice'
    - echo sluice is installed   # not a pip command
"""


def test_unpinned_or_misnamed_installs_are_found_with_their_line() -> None:
    found = unsafe_installs(".gitlab-ci.yml", FILE)
    assert [(u.line, "unrelated" in u.problem) for u in found] == [
        (3, True), (4, False), (6, False), (8, True)]
    message = found[0].render("0.1.0")
    assert message.startswith(".gitlab-ci.yml:3: `sluice` installs `sluice` from the package "
                              "index, an unrelated project")
    assert "`sluice-ml==0.1.0`" in message and "pip install -e ." in message


@pytest.mark.parametrize(("command", "expected"), [
    ("pip install -e .", ("pip install -e .", None)),
    ("pip install sluice -r requirements.txt",
     ("pip install sluice-ml==2.0.0 -r requirements.txt", "2.0.0")),
    ("pip install 'sluice-ml[s3]' && sluice run",
     ("pip install 'sluice-ml[s3]==2.0.0' && sluice run", "2.0.0")),
    ("pip install sluice-ml==1.0.0 -r r.txt", ("pip install sluice-ml==1.0.0 -r r.txt", "1.0.0")),
])
def test_pin_install(command: str, expected: tuple[str, str | None],
                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sluice.ci.install.installed_version", lambda: "2.0.0")
    assert pin_install(command) == expected
    assert unsafe_installs("f", expected[0]) == []


def test_an_uninstalled_sluice_cannot_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sluice.ci.install.installed_version", lambda: None)
    assert pin_install("pip install -e .") == ("pip install -e .", None)
    with pytest.raises(UsageError, match="cannot pin `sluice-ml`"):
        pin_install("pip install sluice-ml")
