"""The forge API client now lives in :mod:`sluice.util.http` (the MLflow mirror uses it too)."""

from sluice.util.http import USER_AGENT as USER_AGENT
from sluice.util.http import ApiClient as ApiClient
from sluice.util.http import HttpFailure as HttpFailure
from sluice.util.http import Response as Response
from sluice.util.http import RetryPolicy as RetryPolicy
from sluice.util.http import next_link as next_link
from sluice.util.http import retry_after_s as retry_after_s
