"""How the suite spreads over pytest-xdist workers (``pytest -n N``), so that the run ends when the work does.

* Every test is a unit of its own, handed to whichever worker is free (xdist's ``LoadScopeScheduling`` with a scope
  per test or group, in place of ``-n``'s default ``load``: that one hands out fixed chunks of a quarter of the
  suite, and a worker whose chunk holds the long tests works on while the others idle).
* The longest tests go first (``LONGEST_FIRST``, from clean-clone ``--durations`` runs), the rest in collection
  order after them: the last tests handed out are short ones, so no worker idles while another finishes a long test.
  A test missing from the list only runs later; nothing is left out.
* Tests that share an expensive start-up run on one worker together, one unit of work (``group_of``): those on
  LocalStack (started once per worker that needs it: some 20 s of both cores and 1.3 GB), and each module whose
  module-scoped fixture builds a venv or starts a server of its own (``SHARED_SETUP``), which one unit per test would
  otherwise set up again on every worker and whenever another module's test ran in between.
"""

from __future__ import annotations

from typing import Any

import pytest

LONGEST_FIRST = (
    "tests/reliability/test_set_tier_during_checkpoint.py::",
    "tests/test_cli_rigs.py::test_every_command_on_a_store_with_pages",
    "tests/model/test_store_model.py::",
    "tests/reliability/test_crashes_and_races.py::test_killed_checkpoints_leave_nothing_listed_and_gc_cleans_up",
    "tests/test_cli_rigs.py::test_every_command_on_an_empty_store",
    "tests/test_cli.py::test_gc_says_what_it_kept_and_how_to_collect_it",
    "tests/test_cli.py::test_s3_credentials_never_printed_when_the_endpoint_is_dead",
    "tests/test_s3_specific.py::test_delete_many_batches_by_a_thousand",
    "tests/test_docs_run.py::test_the_configuration_examples_run_as_written",
    "tests/test_s3_specific.py::test_listing_pages_past_a_thousand_with_the_prefix_applied",
    "tests/reliability/test_interleavings.py::",
    "tests/test_filesystem_specific.py::test_no_single_bit_flip_changes_what_get_metadata_or_load_page_return",
    "tests/test_s3_specific.py::test_a_process_that_used_obstore_exits_cleanly",
    "tests/test_cli.py::test_show_content_raw_and_empty",
    "tests/compat/test_restarts.py::",
    "tests/reliability/test_crashes_and_races.py::",
    "tests/test_event_loops.py::test_one_bridge_from_one_asyncio_run_after_another",
    "tests/test_cli_rigs.py::",
    "tests/test_cli.py::test_invalid_ids_are_echoed_clipped",
    "tests/test_cli.py::test_rm_deletes_pages_but_never_a_checkpoints",
    "tests/contract/test_metadata_and_listing.py::test_listing_beyond_one_thousand_artifacts",
    "tests/reliability/test_faults.py::test_checkpoint_completes_and_restores_through_faults",
    "tests/test_outsider_newcomer.py::test_azure_credentials_that_do_not_authenticate",
    "tests/compat/test_agent_sessions.py::",
    "tests/test_erasure_history.py::",
    "tests/test_cli_erasing.py::",
    "tests/test_scopes_ids.py::test_usual_ids_are_accepted_as_given",
    "tests/test_cli.py::test_demo_keep_says_where_and_how_to_remove_it",
    "tests/test_worker_threads.py::",
    "tests/test_location_secrets.py::",
    "tests/reliability/test_secrets.py::",
    "tests/reliability/test_erasure.py::",
    "tests/test_clocks.py::",
    "tests/contract/test_concurrency.py::",
    "tests/contract/test_network.py::",
    "tests/test_cli.py::",
    "tests/reliability/",
    "tests/contract/test_fsck_repair.py::",
)
"""Node id prefixes, longest first (a test takes the place of the first prefix it starts with)."""

SHARED_SETUP = (
    "tests/test_bare_install.py",  # bare_venv: a venv with tierstore installed, some 10-17 s
    "tests/test_credential_fixes.py",  # auth_moto: a moto server with authentication
    "tests/test_azure_credential_loops.py",  # oauth_azurite: an Azurite with OAuth and a certificate
)


def group_of(nodeid: str) -> str:
    """The unit of work a test belongs to: its group of tests sharing an expensive start-up, else itself."""
    if "localstack" in nodeid:
        return "localstack"
    module = nodeid.split("::")[0]
    return module if module in SHARED_SETUP else nodeid


def rank(item: pytest.Item) -> int:
    """Its place in ``LONGEST_FIRST``; after all of them when it is not there."""
    return next((i for i, prefix in enumerate(LONGEST_FIRST) if item.nodeid.startswith(prefix)), len(LONGEST_FIRST))


def arrange(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a worker of this scheduling, order ``items`` longest first (a stable sort): the order the controller
    hands them out in. A run in one process keeps pytest's order."""
    if getattr(config, "workerinput", {}).get(_LONGEST_FIRST):
        items.sort(key=rank)


_LONGEST_FIRST = "tierstore_longest_first"


class Scheduling:
    """Registered on the controller when xdist runs the tests (``tests/conftest.py``)."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """``--dist load`` (what ``-n N`` alone means) becomes one unit per test or group, handed to the next free
        worker; another ``--dist`` (``loadfile``, ``worksteal``, ...) is left to xdist."""
        if config.getoption("dist") != "load":
            return None
        from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]  # xdist ships no types

        class OneUnitPerTestOrGroup(LoadScopeScheduling):  # type: ignore[misc]
            def _split_scope(self, nodeid: str) -> str:
                return group_of(nodeid)

        return OneUnitPerTestOrGroup(config, log)

    @pytest.hookimpl
    def pytest_configure_node(self, node: Any) -> None:
        if node.config.getoption("dist") == "load":
            node.workerinput[_LONGEST_FIRST] = True
