"""A DVC project shaped like DVC's public "example-get-started", written without DVC.

prepare → featurize → train → evaluate over an XML dataset pinned by
``data/data.xml.dvc``, with ``params.yaml`` sections for the first three stages,
the DVC 3 cache layout (``.dvc/cache/files/md5/xx/rest``, folders as ``.dir``
JSON listings), a ``dvc.lock`` and a local-folder remote. The stages are tiny
standard-library scripts. Every md5 is computed here with hashlib, as DVC does.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import yaml

DVC_YAML = """\
stages:
  prepare:
    cmd: python src/prepare.py data/data.xml
    deps:
    - data/data.xml
    - src/prepare.py
    params:
    - prepare.seed
    - prepare.split
    outs:
    - data/prepared
  featurize:
    cmd: python src/featurization.py data/prepared data/features
    deps:
    - data/prepared
    - src/featurization.py
    params:
    - featurize.max_features
    - featurize.ngrams
    outs:
    - data/features
  train:
    cmd: python src/train.py data/features model.pkl
    deps:
    - data/features
    - src/train.py
    params:
    - train.min_split
    - train.n_est
    - train.seed
    outs:
    - model.pkl
  evaluate:
    cmd: python src/evaluate.py model.pkl data/features
    deps:
    - data/features
    - model.pkl
    - src/evaluate.py
    outs:
    - eval/importance.png
    - eval/live/plots:
        cache: false
    metrics:
    - eval/live/metrics.json:
        cache: false
plots:
- ROC:
    template: simple
    x: fpr
    y:
      eval/live/plots/sklearn/roc/test.json: tpr
"""

PARAMS = """\
prepare:
  split: 0.2
  seed: 20170428
featurize:
  max_features: 100
  ngrams: 1
train:
  seed: 20170428
  n_est: 50
  min_split: 0.01
"""

DATA_XML = "<?xml version='1.0' encoding='utf-8'?>\n<posts>\n" + "".join(
    f'  <row Id="{i}" Tags="{"python" if i % 3 else "r"}" Body="post {i} about '
    f'{"lists" if i % 2 else "plots"}" />\n' for i in range(40)) + "</posts>\n"

SCRIPTS = {
    "src/prepare.py": """\
import os, random, sys, xml.etree.ElementTree as ET
import yaml_free_params as p
params = p.load()["prepare"]
rows = ET.parse(sys.argv[1]).getroot()
random.seed(params["seed"])
os.makedirs("data/prepared", exist_ok=True)
with open("data/prepared/train.tsv", "w") as tr, open("data/prepared/test.tsv", "w") as te:
    for row in rows:
        out = te if random.random() < params["split"] else tr
        out.write(f"{row.get('Id')}\\t{int('python' in row.get('Tags'))}\\t{row.get('Body')}\\n")
""",
    "src/featurization.py": """\
import json, os, sys
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)
for part in ("train", "test"):
    rows = [line.rstrip("\\n").split("\\t") for line in open(f"{src}/{part}.tsv")]
    feats = [{"id": r[0], "y": int(r[1]), "x": len(r[2]) + r[2].count("lists")} for r in rows]
    json.dump(feats, open(f"{dst}/{part}.json", "w"))
""",
    "src/train.py": """\
import json, sys
rows = json.load(open(sys.argv[1] + "/train.json"))
pos = [r["x"] for r in rows if r["y"]] or [0]
json.dump({"threshold": sum(pos) / len(pos)}, open(sys.argv[2], "w"))
""",
    "src/evaluate.py": """\
import json, os, sys
model = json.load(open(sys.argv[1]))
rows = json.load(open(sys.argv[2] + "/test.json"))
hits = sum((r["x"] >= model["threshold"]) == bool(r["y"]) for r in rows)
os.makedirs("eval/live/plots", exist_ok=True)
json.dump({"accuracy": hits / max(len(rows), 1)}, open("eval/live/metrics.json", "w"))
json.dump([{"fpr": 0, "tpr": 0}, {"fpr": 1, "tpr": 1}], open("eval/live/plots/roc.json", "w"))
open("eval/importance.png", "wb").write(b"not really a png")
""",
    # A JSON-only params reader: the stages need nothing beyond the standard library.
    "src/yaml_free_params.py": """\
def load(path="params.yaml"):
    out, section = {}, None
    for line in open(path):
        if not line.strip():
            continue
        key, _, value = line.strip().partition(":")
        if not line.startswith(" "):
            section = out.setdefault(key, {})
        else:
            section[key] = float(value) if "." in value else int(value)
    return out
""",
}


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def put_object(cache: Path, data: bytes) -> str:
    """Store ``data`` in a DVC 3 cache or remote folder; its md5."""
    digest = md5(data)
    target = cache / "files" / "md5" / digest[:2] / digest[2:]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return digest


def put_folder(cache: Path, files: dict[str, bytes]) -> str:
    """Store a folder as DVC does: each file, then its ``.dir`` listing; the listing's md5."""
    rows = sorted(({"md5": put_object(cache, data), "relpath": rel} for rel, data in files.items()),
                  key=lambda row: row["relpath"])
    listing = json.dumps(rows, sort_keys=True).encode()
    digest = md5(listing) + ".dir"
    target = cache / "files" / "md5" / digest[:2] / digest[2:]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(listing)
    return digest


def dvc_file(path: str, digest: str, size: int, nfiles: int | None = None) -> str:
    out: dict[str, Any] = {"md5": digest, "size": size, "hash": "md5"}
    if nfiles is not None:
        out["nfiles"] = nfiles
    out["path"] = path
    return yaml.safe_dump({"outs": [out]}, sort_keys=False)


def write_dvc_project(repo: Path, *, in_workspace: bool = True, in_cache: bool = True,
                      remote: Path | None = None) -> None:
    """The example project in ``repo``: data.xml where asked (workspace, cache, remote)."""
    for rel, text in {**SCRIPTS, "dvc.yaml": DVC_YAML, "params.yaml": PARAMS}.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    data = DATA_XML.encode()
    (repo / "data").mkdir(exist_ok=True)
    (repo / "data/.gitignore").write_text("/data.xml\n")
    (repo / "data/data.xml.dvc").write_text(dvc_file("data.xml", md5(data), len(data)))
    if in_workspace:
        (repo / "data/data.xml").write_bytes(data)
    (repo / ".dvc").mkdir()
    (repo / ".dvc/.gitignore").write_text("/config.local\n/tmp\n/cache\n")
    config = "[core]\n    remote = storage\n"
    if remote is not None:
        put_object(remote, data)
        rel = Path("..") / ".." / remote.relative_to(repo.parent)  # as DVC writes it
        config += f"['remote \"storage\"']\n    url = {rel.as_posix()}\n"
    (repo / ".dvc/config").write_text(config)
    if in_cache:
        put_object(repo / ".dvc/cache", data)
    lock = {"schema": "2.0", "stages": {"prepare": {
        "cmd": "python src/prepare.py data/data.xml",
        "deps": [{"path": "data/data.xml", "hash": "md5", "md5": md5(data), "size": len(data)},
                 {"path": "src/prepare.py", "hash": "md5",
                  "md5": md5(SCRIPTS["src/prepare.py"].encode()),
                  "size": len(SCRIPTS["src/prepare.py"])}],
        "params": {"params.yaml": {"prepare.seed": 20170428, "prepare.split": 0.2}},
        "outs": [{"path": "data/prepared", "hash": "md5",
                  "md5": "0" * 32 + ".dir", "size": 1, "nfiles": 2}]}}}
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    (repo / ".gitignore").write_text("/data/prepared\n/data/features\n/model.pkl\n/eval\n")


def dvc_affected(changed_paths: set[str], changed_params: set[str]) -> set[str]:
    """The stages DVC would rerun: those reading a changed path or param, and downstream."""
    stages = yaml.safe_load(DVC_YAML)["stages"]

    def outs(body: dict[str, Any]) -> set[str]:
        return {next(iter(o)) if isinstance(o, dict) else o
                for o in [*body.get("outs", []), *body.get("metrics", [])]}

    dirty = {name for name, body in stages.items()
             if changed_paths & set(body.get("deps", []))
             or changed_params & set(body.get("params", []))}
    grew = True
    while grew:
        made = set().union(*(outs(stages[n]) for n in dirty)) if dirty else set()
        more = {n for n, b in stages.items() if made & set(b.get("deps", []))} - dirty
        dirty |= more
        grew = bool(more)
    return dirty


def remove_dvc_files(repo: Path) -> None:
    """The migration's last step, as docs/migrating-from-dvc.md says."""
    for rel in ("dvc.yaml", "dvc.lock", "data/data.xml.dvc"):
        (repo / rel).unlink()
    shutil.rmtree(repo / ".dvc")
