"""Everything tierstore does for chuk-ai-session-manager, in one package.

This package's ``__init__`` imports nothing: :mod:`tierstore.codec` reads chuk's plain-JSON pages through
:mod:`tierstore.chuk.legacy_json`, so importing the package must not pull in the bridge (an import cycle) or chuk
itself (an optional dependency). Import the modules by name.
"""
