"""The table of sluice's commands: name → (module that registers it, one-line help).

`sluice --help` lists every command from this table without importing a single
command module (each pulls in its part of the core), and `sluice NAME ...` imports
only NAME's module. The standard library only here: this module is on the path of
every start. tests/unit/cli/test_commands.py checks that the table and the modules
agree, so a new command cannot be left out and a help line cannot go stale.
"""

from __future__ import annotations

# In the order `sluice --help` lists them. A module may register several commands
# (promote_cmd: promote, approve, reject, rollback); each name is a row of its own.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("sluice.cli.init_cmd",
             "Create sluice.yaml (a commented starter), an example project, or convert DVC's."),
    "plan": ("sluice.cli.plan_cmd",
             "Show what `sluice run` would do and why, without running anything."),
    "run": ("sluice.cli.run_cmd",
            "Run every stale stage (or TARGETS and their upstream), reusing cached results."),
    "status": ("sluice.cli.status_cmd",
               "List stale stages with the reasons, and pinned data not as pinned; "
               "exit 0 either way."),
    "affected": ("sluice.cli.affected_cmd",
                 "List the stages and models a change affects, with the chain of reasons."),
    "budget": ("sluice.cli.budget_cmd",
               "Show what each tier spent (last day, week, month) and each budget's use."),
    "report": ("sluice.cli.report_cmd",
               "Show what changed, what ran and what it cost, and each model's gate verdicts."),
    "promote": ("sluice.cli.promote_cmd",
                "Move an alias to a version, if its policy allows; or open an approval "
                "request."),
    "approve": ("sluice.cli.promote_cmd",
                "Approve a pending promotion; the alias moves once enough approvals are in."),
    "reject": ("sluice.cli.promote_cmd", "Reject a pending promotion request."),
    "rollback": ("sluice.cli.promote_cmd",
                 "Move an alias back to the version that held it before (kept in the "
                 "history)."),
    "metrics": ("sluice.cli.metrics_cmd", "Metrics: compare each model between revisions."),
    "plots": ("sluice.cli.plots_cmd", "Plots: overlay each model's plots from two revisions."),
    "params": ("sluice.cli.params_cmd", "Params: compare the params file between revisions."),
    "data": ("sluice.cli.data_cmd",
             "Data: version it outside git (sluice.lock), validate it against a schema, "
             "compare it with a reference for drift."),
    "gc": ("sluice.cli.gc_cmd",
           "Remove store objects, run records and .sluice state nothing references."),
    "models": ("sluice.cli.models_cmd",
               "The model registry: versions, aliases and their history."),
    "ci": ("sluice.cli.ci_cmd",
           "Generate CI configuration from the tiers, and check it is current."),
    "ui": ("sluice.cli.ui_cmd",
           "Serve a web dashboard of runs, budgets, gate evidence and the model registry."),
    "export": ("sluice.cli.export_cmd",
               "Write a tier as an Argo, KFP, SageMaker, Azure ML or Databricks pipeline."),
    "stage": ("sluice.cli.stage_cmd",
              "Stage capsules: run one stage anywhere that reaches the store."),
    "tier": ("sluice.cli.tier_cmd",
             "A tier run in steps, for the platforms (`sluice export`)."),
}
