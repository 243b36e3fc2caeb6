"""The runner: experiment registry, typed parameters, executors, run folders and the CLI.

It sits above the kernel and the packages that read its records; experiments and notebooks
call it, and ``splitbrain`` (``simulator.runner.cli``) is its command line. Experiments are
found by name through :mod:`importlib`, so ``simulator`` still imports nothing from them.
"""

from .catalog import (
    describe_params,
    get,
    make_params,
    param_types,
    parse_grid,
    parse_overrides,
    question,
    read_config,
    register,
    registry,
)
from .checks import Check, mean_ci95
from .executors import Cell, dask_executor, process_executor, run_cell, serial_executor
from .params import ExperimentError, coerce, param, parameters
from .run import RunResult, plan, quick_mode, run_experiment, summarize

__all__ = [
    "Cell", "Check", "ExperimentError", "RunResult", "coerce", "dask_executor", "describe_params", "get",
    "make_params", "mean_ci95", "param", "param_types", "parameters", "parse_grid", "parse_overrides",
    "plan", "process_executor", "question", "quick_mode", "read_config", "register", "registry",
    "run_cell", "run_experiment", "serial_executor", "summarize",
]
