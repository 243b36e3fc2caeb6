"""Experiments: one module per question.

The contract every experiment module keeps (the CLI, the notebooks and the tests all rely
on it, see ``simulator.runner``):

- the module docstring: first line is the question; then *Setup* and *Lesson* paragraphs;
- ``Params``: declared with ``simulator.runner.parameters`` / ``param``: each field's type,
  default, unit, allowed range and help, once (the CLI, ``show``, config files and the
  notebooks read it); cross-field rules in ``__post_init__``;
- ``QUICK``: a ``Params`` instance small enough for tests and CI (seconds, not minutes);
- ``run(p: Params, seed: int) -> dict[str, pandas.DataFrame]``: one seed, deterministic,
  tidy frames; it must include ``"summary"``: one row per arm/policy, scalar columns; a value
  may instead be a ``simulator.history.History``, which the runner writes to ``histories/`` as
  JSON Lines (``splitbrain check linearizable`` reads it);
- a field ``faults_json: str`` in ``Params`` means the experiment replays a saved fault
  schedule (``--faults FILE.json``) instead of its own faults;
- optionally ``validate(quick: bool) -> list[simulator.runner.Check]``: the published results
  this experiment reproduces, for ``splitbrain validate``;
- ``plot(results: dict[str, DataFrame], p: Params) -> dict[str, Figure]``: figures from the
  frames of one or more seeds (frames carry a ``seed`` column when several are combined),
  titles that state the lesson.
"""
