"""Publishing run reports to pull/merge requests (``sluice report --publish``).

``core.publish_report`` is the one entry point; ``PUBLISHERS`` lists the forges
(GitHub, GitLab), each a ``base.Publisher``. Only the standard library is used.
"""

from sluice.report.publish.base import Publisher, PublishOptions
from sluice.report.publish.core import PUBLISHERS, PublishResult, publish_report

__all__ = ["PUBLISHERS", "PublishOptions", "PublishResult", "Publisher", "publish_report"]
