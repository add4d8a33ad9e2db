"""The tier-run manifest: written by `tier start`, validated whenever it is read back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sluice.errors import UsageError
from sluice.pipeline.tier_manifest import (
    ManifestError,
    StageEntry,
    TierManifest,
    check_run_id,
    check_version,
    manifest_key,
    parse_manifest,
    put_manifest,
    read_manifest,
)
from sluice.store.local import LocalStore

DIGEST = "ab" * 16
SNAPSHOT = "cd" * 16 + ".dir"
STAGES = ["unit", "train", "evaluate", "other"]


def _manifest(run_id: str = "run-1") -> TierManifest:
    return TierManifest(
        run_id, "merge", "0123456789abcdef0123456789abcdef01234567", "main", "1.2.3",
        SNAPSHOT, {"unit": StageEntry("cached", "check", DIGEST, "ef" * 16),
                   "train": StageEntry("run", "train", DIGEST, gated=True),
                   "evaluate": StageEntry("budget", "evaluate", reason="over budget"),
                   "other": StageEntry("skip", "transform", reason="not selected")},
        [{"stage": s, "kind": "check", "action": "run", "reasons": [], "fingerprint": None,
          "last_wall_s": None} for s in ("unit", "train", "evaluate")])


@pytest.mark.parametrize("run_id", ["r", "20261206T014642-a5d83e", "3f1c-uuid.2_x", "7" * 128])
def test_valid_run_ids(run_id: str) -> None:
    assert check_run_id(run_id) == run_id


@pytest.mark.parametrize("run_id", ["", "../x", "-r", "a/b", "a b", "x" * 129, None, "é"])
def test_invalid_run_ids_are_usage_errors(run_id: Any) -> None:
    with pytest.raises(UsageError, match="not a valid run id"):
        check_run_id(run_id)


def test_round_trip_through_a_store(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    manifest = _manifest()
    put_manifest(store, manifest)
    back = read_manifest(store, "run-1", STAGES)
    assert back == manifest
    assert back.checks == ["unit"]
    assert manifest_key("run-1") != manifest_key("run-2")


def test_a_missing_manifest_says_to_start_the_run(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="holds no tier run nope") as caught:
        read_manifest(LocalStore(tmp_path / "store"), "nope")
    assert "sluice tier start" in (caught.value.hint or "")


def _damaged(change: dict[str, Any]) -> dict[str, Any]:
    data = _manifest().to_json()
    for key, value in change.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    return data


@pytest.mark.parametrize(("change", "message"), [
    ({"manifest": "other"}, "is not a tier-run manifest"),
    ({"format": 9}, "unknown format 9"),
    ({"run_id": "run-2"}, "names another run"),
    ({"tier": None}, "lacks `tier`"),
    ({"commit": "; rm -rf /"}, "malformed commit"),
    ({"snapshot": "../../etc"}, "code snapshot"),
    ({"stages": {"unit": {"action": "run", "kind": "check", "spec": "../x"}}}, "capsule spec"),
    ({"stages": {"unit": {"action": "explode", "kind": "check"}}}, "malformed entry"),
    ({"stages": {"unit": {"action": "skip", "kind": "check", "spec": DIGEST}}}, "gives stage"),
    ({"stages": {"nope": {"action": "skip", "kind": "check"}}}, "`nope` that sluice.yaml"),
    ({"plan": [{"stage": "nope"}]}, "malformed `plan`"),
    ({"plan": [{"stage": "unit", "kind": "check", "action": "rm", "reasons": [],
                "fingerprint": None, "last_wall_s": None}]}, "malformed `plan`"),
    ({"plan": [{"stage": "unit", "kind": "check", "action": "run", "reasons": [],
                "fingerprint": "../x", "last_wall_s": None}]}, "malformed `plan`"),
    ({"samples": [["a"]]}, "malformed samples"),
])
def test_damage_is_a_clear_error(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ManifestError, match=message):  # a UsageError: exit 2
        parse_manifest(_damaged(change), "run-1", STAGES)


def test_a_stage_sluice_yaml_has_but_the_manifest_lacks() -> None:
    with pytest.raises(ManifestError, match="lacks stage\\(s\\) extra"):
        parse_manifest(_manifest().to_json(), "run-1", [*STAGES, "extra"])


def test_another_sluice_version_is_refused() -> None:
    check_version(_manifest(), "1.2.3")
    with pytest.raises(UsageError, match=r"started by sluice 1\.2\.3, but this step runs "
                                         r"sluice 1\.2\.4") as caught:
        check_version(_manifest(), "1.2.4")
    assert "sluice-ml==1.2.3" in (caught.value.hint or "")


def test_a_step_refuses_an_image_other_than_the_exported_version(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from sluice.errors import UsageError
    from sluice.pipeline.tier_manifest import EXPORT_VERSION_ENV, check_export_version

    monkeypatch.delenv(EXPORT_VERSION_ENV, raising=False)
    check_export_version("1.2.3")  # not exported: nothing to compare with
    monkeypatch.setenv(EXPORT_VERSION_ENV, "1.2.3")
    check_export_version("1.2.3")
    with pytest.raises(UsageError, match=r"exported by sluice 1\.2\.3, but the step's image "
                                         r"runs sluice 9\.9"):
        check_export_version("9.9")
