"""Jenkins multibranch pull requests, seen as the GitHub or GitLab ones they are.

Jenkins builds a pull or merge request with ``CHANGE_ID`` (its number) and
``CHANGE_URL`` (its web page) set, and no variable of the forge itself. The
page's URL says which forge, which repository and which request, which is
what the GitHub and GitLab publishers read from their own CI variables.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace

from sluice.report.publish.base import PublishOptions

_GITHUB = re.compile(r"^(?P<server>https?://[^/]+)/(?P<repo>[^/]+/[^/]+)/pull/(?P<n>\d+)/?$")
_GITLAB = re.compile(r"^(?P<server>https?://[^/]+)/(?P<repo>.+?)/-/merge_requests/(?P<n>\d+)/?$")


def from_jenkins(env: Mapping[str, str],
                 options: PublishOptions) -> tuple[Mapping[str, str], PublishOptions]:
    """``env`` and ``options`` completed from a Jenkins pull-request build, else as given."""
    url = env.get("CHANGE_URL", "")
    if not env.get("CHANGE_ID") or not url or env.get("GITHUB_ACTIONS") or env.get("GITLAB_CI"):
        return env, options
    found = _GITHUB.match(url)
    if found is not None:
        server = found["server"]
        api = "https://api.github.com" if server == "https://github.com" else f"{server}/api/v3"
        return ({"GITHUB_SERVER_URL": server, "GITHUB_API_URL": api, **env},
                replace(options, platform=options.platform or "github",
                        repository=options.repository or found["repo"],
                        pr=options.pr or int(found["n"])))
    found = _GITLAB.match(url)
    if found is not None:
        server = found["server"]
        return ({"CI_SERVER_URL": server, "CI_API_V4_URL": f"{server}/api/v4", **env},
                replace(options, platform=options.platform or "gitlab",
                        repository=options.repository or found["repo"],
                        pr=options.pr or int(found["n"])))
    return env, options
