"""Everything tierstore does for chuk-ai-session-manager, in one package.

* :mod:`~tierstore.chuk.calls` - chuk's own bridge calls (``configure``, ``is_persistent``, ``store_checkpoint``,
  ``load_checkpoint``), which :class:`~tierstore.bridge.ArtifactsBridge` answers as chuk's bridge does;
* :mod:`~tierstore.chuk.page_table`, :mod:`~tierstore.chuk.working_set` (with :mod:`~tierstore.chuk.policies`, the
  budget, pins and anti-thrash it decides with) - chuk's ``PageTable`` and ``WorkingSetManager`` with its scores and
  defaults (``from tierstore import PageTable`` ..., as the spec imports them from chuk);
* :mod:`~tierstore.chuk.legacy_json` - the plain-JSON pages chuk stores (:func:`tierstore.codec.pages.decode_page`);
* :mod:`~tierstore.chuk.bridge`, :mod:`~tierstore.chuk.manager`, :mod:`~tierstore.chuk.lease`,
  :mod:`~tierstore.chuk.state`, :mod:`~tierstore.chuk.binding` (its session's scope) - a chuk ``MemoryManager`` on
  tierstore storage, imported by users from
  :mod:`tierstore.integrations.chuk`; :mod:`~tierstore.chuk.bridge` is the one module that imports chuk itself.

This ``__init__`` imports nothing: the bridge and the codec import modules of this package, so importing the package
must not pull in the bridge (an import cycle) or chuk (an optional dependency). Import the modules by name.
"""
