"""Write a :class:`~sluice.config.from_dvc.Conversion` as a commented ``sluice.yaml``.

Written line by line rather than by a YAML dumper, so that each stage carries a
comment naming the ``dvc.yaml`` line it came from and each note sits next to
what it is about; values are plain where YAML reads them back as the same
string and JSON-quoted (valid YAML) otherwise. The text is parsed once more
before it is returned, so a conversion never writes a file sluice cannot read.
"""

from __future__ import annotations

import json
import re

from sluice.config.from_dvc import Conversion, ConvertedStage, Note
from sluice.util.yamlsource import parse_yaml

# Plain scalars YAML reads back as the same string, in block and flow context alike.
_PLAIN = re.compile(r"[A-Za-z_./][A-Za-z0-9_./@+=-]*(?: +[A-Za-z0-9_./@+=-]+)*", re.ASCII)
_WORDS = {"y", "n", "yes", "no", "true", "false", "on", "off", "null"}

HEADER = """\
# sluice.yaml: converted from dvc.yaml by `sluice init --from-dvc`.
# What changed and why: docs/migrating-from-dvc.md; every key: docs/config.md.
# Every stage below is a `transform`. To get gates and the model registry, mark
# the stage that trains a model `kind: train`, the one that scores it
# `kind: evaluate` (writing per-example predictions), and declare `models:`.
version: 1
"""


def scalar(value: str) -> str:
    """``value`` as a YAML scalar that reads back as the same string."""
    if _PLAIN.fullmatch(value) and value.lower() not in _WORDS:
        return value
    return json.dumps(value, ensure_ascii=False)


def _flow(values: list[str]) -> str:
    return "[" + ", ".join(scalar(v) for v in values) + "]"


def _stage_lines(stage: ConvertedStage, notes: list[Note]) -> list[str]:
    origin = f"{stage.origin.file}:{stage.origin.line}"
    lines = [f"  # from {origin}" + (f" (`{stage.dvc_name}`)" if stage.dvc_name != stage.name
                                     else "")]
    for note in notes:
        lines.append(f"  # NOTE {note.location.file}:{note.location.line}: {note.message}")
    lines.append(f"  {stage.name}:")
    if stage.description:
        lines.append(f"    description: {scalar(stage.description)}")
    lines.append(f"    cmd: {scalar(stage.cmd)}")
    if stage.deps:
        lines.append(f"    deps: {_flow(list(dict.fromkeys(stage.deps)))}")
    if stage.params:
        lines.append(f"    params: {_flow(list(dict.fromkeys(stage.params)))}")
    if stage.outs:
        lines.append("    outs:")
        for name, path in stage.outs.items():
            kind = stage.out_kind.get(name, "outs")
            tail = f"   # DVC {kind}" if kind != "outs" else ""
            lines.append(f"      {name}: {scalar(path)}{tail}")
    return lines


def render_sluice_yaml(conversion: Conversion) -> str:
    """The commented ``sluice.yaml`` text of a conversion."""
    lines = HEADER.rstrip("\n").split("\n")
    if conversion.params_file:
        lines.append(f"params: {scalar(conversion.params_file)}   # stages list the keys "
                     "they read")
    lines += ["", "stages:"]
    if not conversion.stages:
        lines[-1] = "stages: {}"
    for note in conversion.notes:
        if note.stage is None:  # about the whole file: above the stages
            lines.insert(-2, f"# NOTE {note.location.file}:{note.location.line}: "
                             f"{note.message}")
    shown: set[str] = set()
    for stage in conversion.stages:
        # A foreach's notes once, above its first stage.
        group = stage.dvc_name.split("@")[0]
        mine = [n for n in conversion.notes if n.stage == group and group not in shown]
        shown.add(group)
        lines += _stage_lines(stage, mine)
    text = "\n".join(lines) + "\n"
    parse_yaml(text, "sluice.yaml")  # never write what sluice could not read back
    return text
