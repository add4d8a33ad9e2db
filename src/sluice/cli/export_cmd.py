"""``sluice export``: a tier as an Argo, KFP/Vertex, SageMaker, Azure ML or Databricks pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sluice.cli.output import echo, print_json


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        platform: Annotated[str, typer.Argument(
            help="argo, kfp, sagemaker, azureml or databricks.")],
        tier: Annotated[str, typer.Option("--tier", help="The tier to export.")],
        output: Annotated[Path | None, typer.Option(
            "-o", "--output", help="Write the definition to this file (atomically) "
                                   "[default: print it].")] = None,
        image: Annotated[str | None, typer.Option(
            "--image", help="The image every step runs in, with sluice-ml inside; pin it "
                            "by digest (NAME@sha256:...) [default: `export: image:`].")] = None,
        check: Annotated[Path | None, typer.Option(
            "--check", help="Compare this committed export with a fresh one: exit 1 "
                            "saying whether sluice.yaml, the sluice version or the image "
                            "changed.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")
                           ] = False,
    ) -> int:
        """Write a tier as an Argo, KFP, SageMaker, Azure ML or Databricks pipeline.

        Every step runs one sluice command in the image: `sluice tier start` (plans
        the tier at the commit, a runtime parameter), `sluice stage exec --run` per
        stage, and `sluice tier finish` (gates, registry, report), which runs even
        when a step failed. The file embeds no content hash: it changes only with
        sluice.yaml, the sluice version or the image. See docs/platforms.md.

        Examples:

          sluice export argo --tier merge --image ghcr.io/acme/churn@sha256:... -o argo.yaml

          sluice export kfp --tier nightly -o pipeline.yaml

          sluice export argo --tier merge --check argo.yaml   # in CI: exit 1 when stale
        """
        from sluice.export import generate as gen
        from sluice.workspace.project import load_project

        project = load_project()
        if check is not None:
            from sluice.errors import UsageError

            if not check.is_file():
                raise UsageError(f"no exported file at {check}",
                                 hint=f"write it with `sluice export {platform} --tier {tier} "
                                      f"-o {check}` and commit it")
            result = gen.check(project, platform, tier, str(check),
                               check.read_text(encoding="utf-8"), image)
            if as_json:
                print_json(result.to_json())
            elif result.ok:
                echo(f"ok       {check}")
            else:
                echo(f"DRIFTED  {check}: " + ", ".join(result.changed) + " changed "
                     f"(sluice {result.committed['sluice_version']} → "
                     f"{result.current['sluice_version']}, image {result.committed['image']} "
                     f"→ {result.current['image']})")
                echo(result.diff.rstrip("\n"))
                echo(f"Regenerate with `sluice export {platform} --tier {tier} -o {check}`"
                     + ("" if image is None else f" --image {image}") + " and commit it.")
            return 0 if result.ok else 1
        text = gen.generate(project, platform, tier, image)
        from sluice.export.model import is_pinned

        chosen = image or project.config.spec.export.image or ""
        if not is_pinned(chosen):
            echo(f"warning: image {chosen} is not pinned by digest: a moved tag runs other "
                 "code under the same export; pass --image NAME@sha256:DIGEST", err=True)
        if output is not None:
            from sluice.util.fs import atomic_write_bytes

            atomic_write_bytes(output, text.encode())
        if as_json:
            print_json({"platform": platform, "tier": tier, "path": str(output) if output
                        else None, "text": text})
        elif output is None:
            echo(text.rstrip("\n"))
        else:
            echo(f"wrote {output} (commit it; `sluice export {platform} --tier {tier} "
                 f"--check {output}` keeps it current)")
        return 0
