"""Notebook controls are generated from the Params declarations, and degrade without ipywidgets."""

import dataclasses
import sys

import pytest

from experiments import kernel_demo, pacelc, staleness
from simulator.runner.params import spec_of
from simulator.runner.widgets import controls_spec, explore, read_values


def _spec(mod, name):
    return next(spec_of(f) for f in dataclasses.fields(mod.Params) if f.name == name)


@pytest.mark.parametrize("mod", [kernel_demo, pacelc, staleness], ids=lambda m: m.__name__)
def test_every_control_matches_its_declared_range(mod):
    rows = controls_spec(mod)
    assert [r[0] for r in rows] == [f.name for f in dataclasses.fields(mod.Params)]
    for name, kind, lo, hi, default in rows:
        s = _spec(mod, name)
        if kind.endswith(("_slider", "_text")) and kind != "text":
            assert lo == (s.ge if s.ge is not None else s.gt), name
            assert hi == (s.le if s.le is not None else s.lt), name
            if lo is None or hi is None:
                assert kind.endswith("_text"), name
            assert default == getattr(mod.QUICK, name)
            assert (lo is None or default >= lo) and (hi is None or default <= hi), name
        elif kind == "dropdown":
            assert default in s.choices
        # every default read back through the control path rebuilds the quick preset unchanged
    assert read_values(mod, {r[0]: r[4] for r in rows}) == mod.QUICK


def test_specific_kinds():
    rows = {r[0]: r for r in controls_spec(kernel_demo)}
    assert rows["loss"] == ("loss", "float_slider", 0, 1, 0.01)
    assert rows["max_attempts"] == ("max_attempts", "int_slider", 1, 100, 3)
    assert rows["partition_at"][1:4] == ("float_text", 0, None)  # unbounded above: a bounded text box
    assert rows["duration_s"][1:4] == ("float_text", 0, 86_400)  # 0..86400 s is too wide a slider for 6 s
    srows = {r[0]: r for r in controls_spec(staleness)}
    assert srows["engine"][1] == "dropdown" and srows["engine"][4] == "vectorised"
    assert srows["settings"] == ("settings", "text", None, None, "3-1-1:3-2-2")  # CLI syntax
    assert srows["lambda_ars"][1:4] == ("float_slider", 0, 1000)
    assert {r[0]: r for r in controls_spec(pacelc)}["write_ratio"][1:4] == ("float_slider", 0, 1)


def test_text_controls_parse_like_the_cli_and_name_bad_values():
    p = read_values(staleness, {"settings": "3-1-1:3-3-3", "t_ms": "0:1"})
    assert p.settings == ("3-1-1", "3-3-3") and p.t_ms == (0.0, 1.0)
    with pytest.raises(ValueError, match="loss"):
        read_values(kernel_demo, {"loss": 1.5})


def test_explore_returns_none_without_ipywidgets(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # makes `import ipywidgets` raise ImportError
    assert explore(kernel_demo) is None
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "pip install ipywidgets" in out[0]


def test_explore_builds_one_control_per_field_with_a_front_end(monkeypatch):
    """The widget path runs against a stand-in ipywidgets (the real one is optional)."""
    import types

    made, observed = [], []

    def widget(kind):
        def make(**kw):
            made.append((kind, kw))
            return types.SimpleNamespace(kind=kind, on_click=lambda f: None,
                                         observe=lambda f, names: observed.append((kw.get("description"), names)),
                                         **kw)
        return make

    fake = types.ModuleType("ipywidgets")
    for k in ("FloatSlider", "IntSlider", "BoundedFloatText", "BoundedIntText", "Dropdown", "Checkbox", "Text",
              "Button", "Output", "Layout"):
        setattr(fake, k, widget(k))
    fake.VBox = lambda children: types.SimpleNamespace(children=children)
    monkeypatch.setitem(sys.modules, "ipywidgets", fake)
    monkeypatch.setattr("simulator.runner.widgets._has_front_end", lambda: True)
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: None)
    box = explore(staleness)
    assert box is not None and len(box.children) == len(dataclasses.fields(staleness.Params)) + 3
    by_name = {kw["description"].split(" ")[0]: (k, kw) for k, kw in made if "description" in kw}
    assert by_name["engine"][0] == "Dropdown" and by_name["engine"][1]["options"] == ["vectorised", "des"]
    assert by_name["lambda_ars"][0] == "FloatSlider" and by_name["lambda_ars"][1]["max"] == 1000
    assert by_name["lambda_ars"][1]["continuous_update"] is False   # a drag is one rerun, not fifty
    # every parameter control and the seed rerun the experiment when their value changes
    assert len(observed) == len(dataclasses.fields(staleness.Params)) + 1
    assert {names for _, names in observed} == {"value"}


def test_explore_is_static_when_rendering_html(monkeypatch, capsys):
    monkeypatch.setenv("SPLITBRAIN_WIDGETS", "0")
    monkeypatch.setattr("simulator.runner.widgets._has_front_end", lambda: True)
    assert explore(kernel_demo) is None
    assert "[kernel_demo] controls for every parameter appear here" in capsys.readouterr().out
