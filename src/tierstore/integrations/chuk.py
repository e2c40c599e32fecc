"""tierstore storage under chuk-ai-session-manager's ``MemoryManager``, in one line::

    from tierstore.integrations.chuk import attach

    attach(vm)  # vm: a chuk MemoryManager; pages evicted to L3/L4 now go to TIERSTORE_URL's store

The names a chuk user imports; they live in :mod:`tierstore.chuk` with the rest of the chuk glue (the agent's calls
in :mod:`tierstore.chuk.manager`, its bridge in :mod:`tierstore.chuk.bridge`). Importing this module imports chuk,
or raises ``MissingDependencyError`` naming the extra (``tierstore[chuk]``).
"""

from __future__ import annotations

from tierstore.chuk.bridge import TierstoreBridge
from tierstore.chuk.manager import attach, checkpoint, restore, restore_archived

__all__ = ["TierstoreBridge", "attach", "checkpoint", "restore", "restore_archived"]
