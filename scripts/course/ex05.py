"""Predict-then-run exercises of notebooks/05_*.ipynb (see course.common.exercise)."""

from __future__ import annotations

from course.common import INTRO, exercise  # noqa: F401

EXERCISES: list = []
