"""``sluice report``: show the report of the last run (or of one run), and publish it."""

from __future__ import annotations

from typing import Annotated

import typer

from sluice.cli.output import echo, print_json


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        run: Annotated[str | None, typer.Option(help="Run id [default: the latest run].")
                       ] = None,
        fmt: Annotated[str, typer.Option(
            "--format", help="text, markdown, html (prints the file's path) or json.")
        ] = "text",
        as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")
                           ] = False,
        publish: Annotated[bool, typer.Option(
            "--publish", help="Post the report to the pull/merge request of this CI run, "
                              "updating sluice's earlier comment for the same tier.")
        ] = False,
        require_publish: Annotated[bool, typer.Option(
            "--require-publish", help="Exit 1 when publishing fails [default: warn only].")
        ] = False,
        platform: Annotated[str | None, typer.Option(
            help="github or gitlab [default: from GITHUB_ACTIONS / GITLAB_CI].")] = None,
        pr: Annotated[int | None, typer.Option(
            "--pr", min=1, help="Pull request number / merge request iid [default: from the CI "
                         "environment].")] = None,
        repository: Annotated[str | None, typer.Option(
            help="OWNER/NAME on GitHub; project id or GROUP/NAME on GitLab [default: from "
                 "the CI environment].")] = None,
        image_base_url: Annotated[str | None, typer.Option(
            help="Show plots as images served from URL/<file name> [default: link them to "
                 "the CI run's artifacts].")] = None,
        comment_key: Annotated[str | None, typer.Option(
            help="Which comment to update [default: the report's tier].")] = None,
    ) -> int:
        """Show what changed, what ran and what it cost, and each model's gate verdicts.

        Markdown suits a pull-request comment or $GITHUB_STEP_SUMMARY; the HTML page
        is self-contained, with the plots embedded. --publish posts the Markdown to the
        pull request (GitHub) or merge request (GitLab) of the CI run, and later pushes
        edit that same comment. The token comes from the environment only
        (SLUICE_GITHUB_TOKEN or GITHUB_TOKEN; SLUICE_GITLAB_TOKEN, GITLAB_TOKEN or
        CI_JOB_TOKEN). See docs/publish.md.

        Examples:

          sluice report

          sluice report --format markdown >> "$GITHUB_STEP_SUMMARY"

          sluice report --run 20261129T090105-b055ae --json

          sluice report --publish                  # in a pull/merge request job

          sluice report --publish --platform github --repository octo/app --pr 12
        """
        from sluice.errors import UsageError
        from sluice.workspace.project import load_project

        chosen = "json" if as_json else fmt
        if chosen not in ("text", "markdown", "html", "json"):
            raise UsageError(f"unknown format `{chosen}`",
                             hint="use text, markdown, html or json")
        published = None
        if publish or require_publish:
            from sluice.report.publish import PublishOptions, publish_report

            published = publish_report(load_project(), run, PublishOptions(
                platform=platform, pr=pr, repository=repository,
                image_base_url=image_base_url, key=comment_key, require=require_publish))
            data, folder = published.report, published.folder
        else:
            from sluice.report.run import load_report

            project = load_project()
            data, folder = load_report(project, run)
            if run is None:  # "the last run's report": say so when it is an older run's
                from sluice.report.run import older_report_note

                note = older_report_note(project, str(data["run_id"]))
                if note is not None:
                    echo(note, err=True)
        if chosen == "json":
            print_json(data if published is None else {**data, "publish": published.to_json()})
        elif chosen == "markdown":
            from sluice.report.run import markdown

            echo(markdown(data, data.get("plots")))
        elif chosen == "html":
            echo(str(folder / "report.html") if folder else "")
        else:
            from sluice.report.run import markdown

            echo(markdown(data).replace("**", ""))
        if published is not None and not published.published:
            echo(f"warning: the report was not published: {published.error}", err=True)
        elif published is not None and chosen != "json":
            # Beside Markdown or an HTML path on stdout, the status line goes to stderr.
            echo(f"published the report to {published.target} ({published.action}): "
                 f"{published.url or f'comment {published.comment_id}'}"
                 + (" (truncated to fit)" if published.truncated else ""),
                 err=chosen != "text")
        return 0
