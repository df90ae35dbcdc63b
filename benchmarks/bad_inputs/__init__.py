"""Bad inputs and faults, one module per area; ``python benchmarks/bad_inputs.py`` runs them all.

Each area module exposes ``CASES``: a list of ``(label, action)`` where ``action(tmp)`` gets a fresh
temporary directory and does one bad thing: usually ``cli(["sample", ...])`` (the ``dind`` command
in-process) or a library call. The runner records what a user would see.
"""
