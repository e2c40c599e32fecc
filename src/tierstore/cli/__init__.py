"""The ``tierstore`` command line: a module per command, :mod:`~tierstore.cli.render` for output,
:mod:`~tierstore.cli.exit_codes` for exit codes, :mod:`~tierstore.cli.app` for the parser and the entry point.

Contract: ``main(argv)`` runs one command and returns its exit code (docs/configuration.md lists them); output is
plain text for people or JSON with ``--json``; a progress bar is drawn on stderr only when it is a terminal.
"""

from tierstore.cli.app import main
from tierstore.config import default_data_dir

__all__ = ["default_data_dir", "main"]
