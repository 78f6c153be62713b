"""SegStudio benchmarks: ``python -m bench [NAME ...]``.

Each benchmark is a module ``bench/<name>.py`` (not starting with ``_``) with a ``run(args) -> dict`` function
that measures our code and a plain baseline *in the same run*, prints its figures and the ratio, and returns
them as a JSON-able dict. ``python -m bench`` runs all of them; ``--json FILE`` also writes the results.
Benchmarks are not tests: CI never times anything.
"""
