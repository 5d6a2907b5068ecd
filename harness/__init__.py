"""Load and chaos testing harness.

The public surface is small on purpose: the exception tree and the version. Everything else is
reached through the subpackages (``harness.proxy``, ``harness.stack``) or the ``harness`` CLI.
"""

from harness.errors import (
    BadInputError,
    HarnessError,
    InfrastructureError,
    ToxiproxyError,
)

__version__ = "0.1.0"

__all__ = [
    "BadInputError",
    "HarnessError",
    "InfrastructureError",
    "ToxiproxyError",
    "__version__",
]
