"""The cross-references of a validated ``sluice.yaml``, resolved into :class:`Stage` values.

:class:`Resolver` checks what pydantic cannot (:mod:`sluice.config.schema` holds only
the shape): paths, dataset and stage-output references, params keys and every
``${...}`` in a stage's ``cmd`` and ``env``. It collects each problem with its file,
line and column, and the closest valid name for a typo, so that
:mod:`sluice.config.load` reports them all together.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from sluice.config.base import (
    DEFAULT_PARAMS_FILE,
    TIER_KEYS,
    Config,
    InputRef,
    Stage,
    is_glob,
    lookup_param,
    normalise_path,
    param_keys,
)
from sluice.config.interpolate import (
    NAMESPACES,
    InterpolationError,
    Reference,
    references,
)
from sluice.errors import ConfigError
from sluice.util.suggest import closest, did_you_mean
from sluice.util.yamlsource import PathKey

if TYPE_CHECKING:
    from sluice.config.schema import ModelSpec, StageSpec


def _label(at: PathKey) -> str:
    """`cmd` or `env.NAME`: the field of a stage a template came from."""
    return f"`{'.'.join(str(p) for p in at[2:])}`"


class Resolver:
    """Resolves one config's cross-references, collecting every problem it finds."""

    def __init__(self, config: Config, slipped: frozenset[str] = frozenset()) -> None:
        self.config = config
        self.problems: list[ConfigError] = []
        # Stages that had an unknown key set aside: a missing `cmd` there is most likely
        # that key (`cdm:`), already reported once.
        self.slipped = slipped
        self.out_paths = {(s, o): p for s, spec in config.spec.stages.items()
                          for o, p in spec.outs.items()}
        self.dataset_paths = {name: self.path(d.path, f"dataset `{name}` ({{path}})",
                                              ("datasets", name, "path"))
                              for name, d in config.spec.datasets.items()}

    def fail(self, message: str, path: PathKey, hint: str | None = None,
             *, key: bool = False, offset: int | None = None) -> None:
        source = self.config.source
        where = source.locate(path, key=key) if offset is None else \
            source.locate_offset(path, offset)
        self.problems.append(ConfigError(message, hint=hint, location=where))

    def path(self, raw: str, what: str, at: PathKey) -> str | None:
        if not self.literal(raw, what.replace("{path}", f"`{raw}`"), at, "paths"):
            return None
        try:
            return normalise_path(raw, what, self.config.source.locate(at))
        except ConfigError as exc:
            self.problems.append(exc)
            return None

    def literal(self, raw: str, subject: str, at: PathKey, kind: str) -> bool:
        """False (and a problem) when ``raw`` holds a ``${`` that would stay in it as written."""
        offset = raw.find("${")  # never interpolated: it would stay in the value as written
        if offset != -1:
            self.fail(f"{subject} contains `${{`, but sluice does not interpolate {kind}", at,
                      "only a stage's `cmd` and `env` are interpolated; write the value out",
                      offset=offset)
        return offset == -1

    def aliases(self) -> None:
        """Registry alias names are used as written; a `${` in one is a mistake."""
        spec = self.config.spec
        named: list[tuple[str | None, PathKey]] = [
            *((m.baseline.alias, ("models", n, "baseline", "alias"))
              for n, m in spec.models.items() if m.baseline),
            *((t.promote, ("tiers", n, "promote")) for n, t in spec.tiers.items()),
            *((p.after, ("promotion", n, "after")) for n, p in spec.promotion.items()),
            *((d.drift.alias, ("datasets", n, "drift", "alias"))
              for n, d in spec.datasets.items() if d.drift)]
        for value, at in named:
            if value is not None:
                self.literal(value, f"alias `{value}` (`{'.'.join(map(str, at))}`)", at,
                             "alias names")

    def stage(self, name: str, spec: StageSpec) -> Stage:
        at: PathKey = ("stages", name)
        spec, generated_deps = self.generated(name, spec)
        outs: dict[str, str] = {}
        for out, raw in spec.outs.items():
            where: PathKey = (*at, "outs", out)
            norm = self.path(raw, f"output `{out}` ({{path}}) of stage `{name}`", where)
            if norm is None:
                continue
            if is_glob(norm):
                self.fail(f"output `{out}` of stage `{name}` is a glob (`{raw}`)", where,
                          "name one file or directory per output")
            elif norm == ".":
                self.fail(f"output `{out}` of stage `{name}` is the repository root", where,
                          "write each output to its own file or folder, e.g. `out/model.pkl`")
            outs[out] = norm
        deps = list(generated_deps)
        for i, raw in enumerate(spec.deps):
            norm = self.path(raw, f"dependency {{path}} of stage `{name}`", (*at, "deps", i))
            if norm is not None:
                deps.append(norm)
        inputs = [ref for i, text in enumerate(spec.inputs)
                  if (ref := self.input_ref(name, text, (*at, "inputs", i))) is not None]
        for i, key in enumerate(spec.params):
            self.param_key(f"params key `{key}` of stage `{name}`", key, (*at, "params", i))
        for param, key in (spec.parameters or {}).items():
            self.param_key(f"params key `{key}` of parameter `{param}` of stage `{name}`", key,
                           (*at, "parameters", param))
        self.cmd_refs(name, spec, inputs)
        return Stage(name=name, spec=spec, deps=tuple(deps), inputs=tuple(inputs), outs=outs)

    def generated(self, name: str, spec: StageSpec) -> tuple[StageSpec, list[str]]:
        """The spec with its command (written by sluice for a `uses:` stage), and the deps
        that adds; a stage with neither `cmd` nor `uses:` is a problem."""
        if spec.uses is None:
            if spec.cmd is None and name in self.slipped:
                return spec.model_copy(update={"cmd": ""}), []
            if spec.cmd is None:
                self.fail(f"stage `{name}` is missing the required key `cmd`",
                          ("stages", name), "add `cmd:` (a shell command string), e.g. "
                          "`cmd: python train.py --out ${outs.model}`, or `uses: "
                          "mlflow-project` / `uses: metaflow` (docs/mlflow-projects.md)",
                          key=True)
                return spec.model_copy(update={"cmd": ""}), []
            return spec, []
        from sluice.config.uses import generate

        made = generate(name, spec, lambda message, at, hint: self.fail(message, at, hint),
                        self.path)
        return made if made is not None else (spec.model_copy(update={"cmd": ""}), [])

    def input_ref(self, stage: str, text: str, at: PathKey) -> InputRef | None:
        ref = text.strip()
        parts = ref.split(".")
        subject = f"input `{ref}` of stage `{stage}`"
        datasets = self.config.spec.datasets
        if parts[0] == "datasets" and len(parts) == 2:
            if parts[1] not in datasets:
                self.fail(f"{subject} names unknown dataset `{parts[1]}`"
                          + did_you_mean(parts[1], tuple(datasets)), at,
                          "declare it under `datasets:` or fix the name")
                return None
            norm = self.dataset_paths[parts[1]]
            return InputRef(text, norm, None) if norm else None
        if parts[0] == "stages" and len(parts) == 4 and parts[2] == "outs":
            return self.stage_out(subject, parts[1], parts[3], at, text)
        self.fail(f"{subject} is not a dataset or stage output", at,
                  self.input_hint(ref))
        return None

    def input_hint(self, ref: str) -> str:
        """How to write a malformed ``inputs:`` entry, guessing what was meant."""
        stages, datasets = self.config.spec.stages, self.config.spec.datasets
        inner = ref.removeprefix("${").removesuffix("}")
        parts = inner.split(".")
        guess = None
        if inner != ref:
            guess = inner
        elif len(parts) == 2 and parts[0] in stages and parts[1] in stages[parts[0]].outs:
            guess = f"stages.{parts[0]}.outs.{parts[1]}"
        elif len(parts) == 1 and parts[0] in datasets:
            guess = f"datasets.{parts[0]}"
        elif len(parts) == 3 and parts[0] == "stages":
            guess = f"stages.{parts[1]}.outs.{parts[2]}"
        general = "write `datasets.NAME` or `stages.STAGE.outs.OUTPUT`"
        return f"did you mean `{guess}`? ({general})" if guess else general

    def stage_out(self, subject: str, producer: str, out: str, at: PathKey,
                  text: str, offset: int | None = None) -> InputRef | None:
        stages = self.config.spec.stages
        if producer not in stages:
            self.fail(f"{subject} names unknown stage `{producer}`"
                      + did_you_mean(producer, tuple(stages)), at,
                      "check the stage name under `stages:`", offset=offset)
            return None
        if out not in stages[producer].outs:
            outs = tuple(stages[producer].outs)
            self.fail(f"{subject}: stage `{producer}` has no output `{out}`"
                      + did_you_mean(out, outs), at,
                      f"the outputs of `{producer}` are: "
                      + (", ".join(outs) or "(none)"), offset=offset)
            return None
        path = posixpath.normpath(self.out_paths[(producer, out)].strip())
        return InputRef(text, path, producer)

    def param_key(self, subject: str, key: str, at: PathKey, offset: int | None = None) -> None:
        found, _ = lookup_param(self.config.params, key)
        if found:
            return
        if self.config.params_file is None:
            self.fail(f"{subject} needs a params file, but there is none", at,
                      f"create {DEFAULT_PARAMS_FILE}, or set the top-level `params:` to the "
                      "path of your params file", offset=offset)
            return
        self.fail(f"{subject}: `{key}` is not in {self.config.params_file}"
                  + did_you_mean(key, param_keys(self.config.params)), at,
                  f"add it to {self.config.params_file} or fix the key", offset=offset)

    def cmd_refs(self, stage: str, spec: StageSpec, inputs: list[InputRef]) -> None:
        """Check every ``${...}`` in cmd and env; stage outputs used there become inputs."""
        # A `uses:` stage's command is sluice's own; its params keys are checked where written.
        fields: list[tuple[str, PathKey]] = [] if spec.uses or spec.cmd is None else \
            [(spec.cmd, ("stages", stage, "cmd"))]
        fields += [(v, ("stages", stage, "env", k)) for k, v in spec.env.items()]
        for template, at in fields:
            try:
                refs = list(references(template))
            except InterpolationError as exc:
                self.fail(f"{exc} in {_label(at)} of stage `{stage}`", at, exc.hint,
                          offset=exc.offset)
                continue
            for ref in refs:
                found = self.reference(stage, spec, ref, at)
                if found is not None and all(i.ref != found.ref for i in inputs):
                    inputs.append(found)

    def reference(self, stage: str, spec: StageSpec, ref: Reference,
                  at: PathKey) -> InputRef | None:
        parts = ref.parts
        head, rest = parts[0], parts[1:]
        subject = f"`${{{ref.name}}}` in {_label(at)} of stage `{stage}`"
        off = ref.offset
        if head not in NAMESPACES:
            close = closest(head, NAMESPACES)
            guess = "; did you mean `${" + ".".join([close, *rest]) + "}`?" if close else ""
            self.fail(f"unknown reference {subject}" + guess, at,
                      "references start with " + ", ".join(f"`{n}.`" for n in NAMESPACES),
                      offset=off)
        elif head == "outs":
            if len(rest) != 1 or rest[0] not in spec.outs:
                name = ".".join(rest)
                outs = ", ".join(spec.outs) or "(none)"
                self.fail(f"{subject}: stage `{stage}` has no output `{name}`"
                          + did_you_mean(name, tuple(spec.outs)), at,
                          f"declare it under the stage's `outs:` (its outputs: {outs})",
                          offset=off)
        elif head == "params":
            self.param_key(subject, ".".join(rest), at, offset=off)
        elif head == "tier":
            if len(rest) != 1 or rest[0] not in TIER_KEYS:
                close = closest(".".join(rest), TIER_KEYS)
                self.fail(f"unknown reference {subject}"
                          + (f"; did you mean `${{tier.{close}}}`?" if close else ""), at,
                          "tier values are " + ", ".join(f"`tier.{k}`" for k in TIER_KEYS),
                          offset=off)
        elif head == "datasets":
            if len(rest) != 1 or rest[0] not in self.config.spec.datasets:
                name = ".".join(rest)
                self.fail(f"{subject} names unknown dataset `{name}`"
                          + did_you_mean(name, tuple(self.config.spec.datasets)), at,
                          "declare it under `datasets:`", offset=off)
            elif (path := self.dataset_paths[rest[0]]) is not None:
                return InputRef(ref.name, path, None)
        elif len(rest) != 3 or rest[1] != "outs":
            self.fail(f"{subject} is not a stage output", at,
                      "write `${stages.STAGE.outs.OUTPUT}`", offset=off)
        else:
            return self.stage_out(subject, rest[0], rest[2], at, ref.name, offset=off)
        return None

    def model(self, name: str, spec: ModelSpec) -> None:
        stages = self.config.spec.stages
        at: PathKey = ("models", name)
        for role in ("train", "evaluate"):
            target = getattr(spec, role)
            if target is not None and target not in stages:
                self.fail(f"model `{name}` names unknown {role} stage `{target}`"
                          + did_you_mean(target, tuple(stages)), (*at, role),
                          "use the name of a stage under `stages:`")
        if spec.train in stages and spec.artifact not in stages[spec.train].outs:
            outs = tuple(stages[spec.train].outs)
            self.fail(f"artifact `{spec.artifact}` of model `{name}` is not an output of "
                      f"stage `{spec.train}`" + did_you_mean(spec.artifact, outs),
                      (*at, "artifact"),
                      f"the artifact is the name of one of `{spec.train}`'s outputs: "
                      + (", ".join(outs) or "(none)"))
        # The baseline's files are read for verdicts: inside the repository, like any path.
        for key in ("predictions", "metrics"):
            raw = getattr(spec.baseline, key, None) if spec.baseline else None
            if raw is not None:
                self.path(raw, f"baseline {key} {{path}} of model `{name}`",
                          (*at, "baseline", key))
