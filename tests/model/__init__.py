"""The model-based attack of the whole store (issue 21): a Hypothesis state machine that keeps a simple model of
what the store must hold and drives the real bridge, maintenance and command line against it on every kind of rig.
``machine.py`` has the rules and invariants, ``world.py`` the model, ``damage.py`` the damage kinds,
``FOUND.md`` what it found."""
