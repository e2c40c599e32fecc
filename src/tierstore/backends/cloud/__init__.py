"""The policy every cloud shares: failure classification and the error table (``failure``), the retry loop and
deadline (``retry``), the options (``options``), tiers as storage classes (``tiers``), what a cloud must supply
(``client``), the protocol built on it (``backend``), and credentials kept out of logs (``redact``).

Each cloud is a package beside this one (``s3``, ``gcs``, ``azure``) holding only what its SDK differs in.
"""

from tierstore.backends.cloud.backend import CloudBackend
from tierstore.backends.cloud.client import Calls, Head, Listed, ObjectClient
from tierstore.backends.cloud.failure import Failure, FailureKind, from_status, kind_of_status
from tierstore.backends.cloud.options import ClientChoice, CloudOptions
from tierstore.backends.cloud.retry import AttemptLog, RetryPolicy
from tierstore.backends.cloud.tiers import TierMap

__all__ = [
    "AttemptLog",
    "Calls",
    "ClientChoice",
    "CloudBackend",
    "CloudOptions",
    "Failure",
    "FailureKind",
    "Head",
    "Listed",
    "ObjectClient",
    "RetryPolicy",
    "TierMap",
    "from_status",
    "kind_of_status",
]
