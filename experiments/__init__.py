"""Experiments: one module per question.

The contract every experiment module keeps (the CLI, the notebooks and the tests all rely
on it, see ``simulator.experiment``):

- the module docstring: first line is the question; then *Setup* and *Lesson* paragraphs;
- ``Params``: a frozen dataclass of typed parameters with defaults, validated in
  ``__post_init__`` (ValueError naming the field and its allowed range);
- ``QUICK``: a ``Params`` instance small enough for tests and CI (seconds, not minutes);
- ``run(p: Params, seed: int) -> dict[str, pandas.DataFrame]``: one seed, deterministic,
  tidy frames; it must include ``"summary"``: one row per arm/policy, scalar columns;
- ``plot(results: dict[str, DataFrame], p: Params) -> dict[str, Figure]``: figures from the
  frames of one or more seeds (frames carry a ``seed`` column when several are combined),
  titles that state the lesson.
"""
