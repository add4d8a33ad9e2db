"""The example project, copied into a temporary folder, with an `export:` section."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sluice.workspace.project import Project, load_project

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "churn"
IMAGE = "ghcr.io/acme/churn@sha256:" + "ab" * 32
EXPORT_SECTION = """
export:
  service_account: sluice-runner
  node_selector: {pool: ml}
  instance_type: ml.m5.xlarge
  cluster: cpu-cluster
  secrets:
    SLUICE_DATABASE_URL: sluice-db/url
    AWS_SECRET_ACCESS_KEY: store-creds/secret
  executors:
    gpu: {gpu_type: nvidia-tesla-a100, instance_type: ml.p4d.24xlarge, cluster: gpu-cluster}
executors:
  gpu: {type: ray, retries: 3}
storage:
  cache: s3://team-cache/sluice
"""


def copy_example(tmp_path: Path, extra: str = EXPORT_SECTION) -> Path:
    root = tmp_path / "churn"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".sluice", "__pycache__"))
    text = (root / "sluice.yaml").read_text()
    # train_churn runs on the GPU executor, with one GPU.
    text = text.replace("resources: {cpus: 2, memory: 2GB}",
                        "resources: {cpus: 2, gpus: 1, memory: 2GB}\n    executor: gpu")
    (root / "sluice.yaml").write_text(text + extra)
    return root


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return load_project(copy_example(tmp_path))
