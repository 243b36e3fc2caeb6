"""Sliders and drop-downs for an experiment, generated from its ``Params`` declaration.

``explore(mod)`` builds one control per field of ``mod.Params`` (the same declaration the CLI
and ``splitbrain show`` read: type, unit, range, help); changing a value (or the seed, or pressing
Run) rebuilds the parameters, reruns ``mod.run(params, seed)`` on the quick preset and redraws
``mod.plot``. Sliders report on release, not while dragging, so a drag is one rerun. Bounded numbers become
sliders, numbers unbounded on one side bounded text boxes, ``choices`` drop-downs, booleans
check boxes, tuples text in the CLI's ``a:b:c`` syntax (read with :func:`~simulator.runner.params.coerce`).

With ``SPLITBRAIN_WIDGETS=0`` (set when the course is rendered to static HTML), or where
``ipywidgets`` is missing or there is no kernel front end (plain ``python``, CI), ``explore``
prints one line and returns ``None``: notebooks still run top to bottom with default values.
:func:`controls_spec` is the pure part (no ipywidgets needed), so it can be tested anywhere.
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from typing import Any

from simulator.runner.params import ExperimentError, coerce, field_types, spec_of

INSTALL_HINT = "interactive controls need ipywidgets and a Jupyter kernel: pip install ipywidgets"
STATIC_HINT = "controls for every parameter appear here when this notebook runs in Jupyter with ipywidgets"


def cli_text(v: Any) -> str:
    """A value in the CLI's spelling: ``a:b:c`` for a tuple, ``lo-hi`` inside a pair."""
    if v is None:
        return "none"
    if isinstance(v, (tuple, list)):
        return ":".join("-".join(map(cli_text, x)) if isinstance(x, (tuple, list)) else cli_text(x) for x in v)
    return str(v)


def _base(mod: Any, quick: bool) -> Any:
    return mod.QUICK if quick and hasattr(mod, "QUICK") else mod.Params()


def _is_tuple(t: Any) -> bool:
    return typing.get_origin(t) in (tuple, list)


def controls_spec(mod: Any, quick: bool = True) -> list[tuple[str, str, Any, Any, Any]]:
    """One row per field of ``mod.Params``: ``(name, kind, min, max, default)``.

    ``kind`` is ``"float_slider"``/``"int_slider"`` (both bounds declared, range at most 1000x
    the default), ``"float_text"``/``"int_text"`` (a bound missing — ``min``/``max`` is ``None``
    on that side — or a range too wide for a slider), ``"dropdown"``
    (``min``/``max`` are ``None``; the choices are in the spec), ``"checkbox"``, or ``"text"``
    (tuples in the CLI syntax, free text). Strict bounds (``gt``/``lt``) are given as the bound
    itself: the Params check refuses the exact value when the learner presses Run. ``default``
    is the value in the quick preset (``quick=True``) or in ``Params()``; for ``"text"`` it is
    the CLI spelling.
    """
    base = _base(mod, quick)
    types = field_types(mod.Params)
    rows = []
    for f in dataclasses.fields(mod.Params):
        s, t, v = spec_of(f), types[f.name], getattr(base, f.name)
        if typing.get_origin(t) is typing.Literal:
            rows.append((f.name, "dropdown", None, None, v))
        elif _is_tuple(t) or typing.get_origin(t) is not None:
            rows.append((f.name, "text", None, None, cli_text(v)))
        elif s.choices is not None:
            rows.append((f.name, "dropdown", None, None, v))
        elif t is bool:
            rows.append((f.name, "checkbox", None, None, v))
        elif t in (int, float):
            lo = s.ge if s.ge is not None else s.gt
            hi = s.le if s.le is not None else s.lt
            kind = "int" if t is int else "float"
            kind += "_slider" if _slider_fits(lo, hi, v) else "_text"
            rows.append((f.name, kind, lo, hi, v))
        else:
            rows.append((f.name, "text", None, None, v))
    return rows


def _slider_fits(lo: float | None, hi: float | None, default: Any) -> bool:
    """Both bounds declared and the range not absurdly wide for the default (a 0..86400 s
    slider cannot set 6 s): otherwise a bounded text box."""
    if lo is None or hi is None:
        return False
    return hi - lo <= 1000 * max(abs(float(default)), 1.0)


def _step(lo: float, hi: float, default: float) -> float:
    """A tenth of the default's order of magnitude (0.002 s -> 0.0001), so small defaults stay settable."""
    if default:
        return min((hi - lo) / 100, 10.0 ** (math.floor(math.log10(abs(default))) - 1))
    return (hi - lo) / 200


def _choices(mod: Any, name: str) -> tuple:
    f = next(f for f in dataclasses.fields(mod.Params) if f.name == name)
    t = field_types(mod.Params)[name]
    if typing.get_origin(t) is typing.Literal:
        return typing.get_args(t)
    return spec_of(f).choices or ()


def _has_front_end() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def read_values(mod: Any, raw: dict[str, Any], quick: bool = True) -> Any:
    """Build ``mod.Params`` from control values (text fields parsed like the CLI); raises
    ``ValueError``/``ExperimentError`` naming the parameter on a bad value."""
    types = field_types(mod.Params)
    spec = {name: kind for name, kind, *_ in controls_spec(mod, quick)}
    values = {}
    for name, v in raw.items():
        if spec[name] == "text":
            values[name] = coerce(name, str(v), types[name])
        elif spec[name].startswith("float"):
            values[name] = float(v)
        else:
            values[name] = v
    return dataclasses.replace(_base(mod, quick), **values)


def explore(mod: Any, quick: bool = True, seed: int = 1, auto: bool = True) -> Any:
    """Controls for ``mod``'s parameters and a Run button; ``None`` without ipywidgets or a kernel.

    With ``auto`` (default) every change of a control reruns the experiment at once.
    """
    exp = getattr(mod, "__name__", "this experiment").rsplit(".", 1)[-1]
    if os.environ.get("SPLITBRAIN_WIDGETS") == "0":   # a static rendering (scripts/build_course.py)
        print(f"[{exp}] {STATIC_HINT}")
        return None
    try:
        import ipywidgets as w
        from IPython.display import display
    except ImportError:
        print(f"[{exp}] {INSTALL_HINT}")
        return None
    if not _has_front_end():
        print(f"[{exp}] {INSTALL_HINT}")
        return None

    style, layout = {"description_width": "180px"}, w.Layout(width="520px")
    fields = {f.name: spec_of(f) for f in dataclasses.fields(mod.Params)}
    controls: dict[str, Any] = {}
    for name, kind, lo, hi, default in controls_spec(mod, quick):
        s = fields[name]
        desc = f"{name} ({s.unit})" if s.unit else name
        kw = dict(description=desc, value=default, style=style, layout=layout, tooltip=s.help)
        if kind == "float_slider":
            c = w.FloatSlider(min=lo, max=hi, step=_step(lo, hi, default), readout_format=".4g",
                             continuous_update=False, **kw)
        elif kind == "int_slider":
            c = w.IntSlider(min=int(lo), max=int(hi), continuous_update=False, **kw)
        elif kind in ("float_text", "int_text"):
            cls = w.BoundedFloatText if kind == "float_text" else w.BoundedIntText
            big = 1e18 if kind == "float_text" else 2**62
            c = cls(min=lo if lo is not None else -big, max=hi if hi is not None else big, **kw)
        elif kind == "dropdown":
            c = w.Dropdown(options=list(_choices(mod, name)), **kw)
        elif kind == "checkbox":
            c = w.Checkbox(**kw)
        else:
            c = w.Text(**kw)
        controls[name] = c
    seed_box = w.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed", style=style, layout=layout)
    button = w.Button(description="Run", button_style="primary")
    out = w.Output()

    def rerun(_: Any = None) -> None:
        import matplotlib.pyplot as plt

        out.clear_output(wait=True)
        with out:
            try:
                p = read_values(mod, {n: c.value for n, c in controls.items()}, quick)
            except (ValueError, ExperimentError) as e:
                print(e)
                return
            print("running…")
            res = mod.run(p, seed_box.value)
            out.clear_output(wait=True)
            if "summary" in res:
                display(res["summary"])
            for fig in mod.plot(res, p).values():
                display(fig)
                plt.close(fig)

    button.on_click(rerun)
    if auto:
        for c in (*controls.values(), seed_box):
            c.observe(rerun, names="value")
    box = w.VBox([*controls.values(), seed_box, button, out])
    display(box)
    return box
