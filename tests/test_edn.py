"""EDN histories as Jepsen, Knossos and Porcupine write them (small fixtures in tests/data/, written
in those formats: Jepsen's history.edn maps with :time in ns and nemesis events, Porcupine's kv
data without :time, a Knossos history wrapped in one vector)."""

from pathlib import Path

import pytest

from simulator.history.edn import load_history
from simulator.history.linearizable import check_linearizable_file

DATA = Path(__file__).parent / "data"


def test_jepsen_edn_loads_skips_nemesis_and_converts_ns():
    h, lines = load_history(DATA / "jepsen_cas_register.edn")
    assert len(h) == 16  # 18 lines, 2 nemesis events skipped
    assert "nemesis" not in h.process and 7 not in lines and 16 not in lines
    assert h.f[0] == "read" and h.type[0] == "invoke" and h.value[0] is None
    assert h.time[0] == pytest.approx(1e-3)  # 1,000,000 ns
    assert ("cas" in h.f) and (4, 0) in h.value  # [4 0] -> a pair
    assert check_linearizable_file(DATA / "jepsen_cas_register.edn", model="cas-register").valid is True


def test_porcupine_kv_edn_both_ways():
    assert check_linearizable_file(DATA / "porcupine_kv_ok.edn", model="kv").valid is True
    r = check_linearizable_file(DATA / "porcupine_kv_bad.edn", model="kv")
    assert r.valid is False and {o.key for o in r.counterexample} == {"0"}


def test_knossos_vector_form():
    r = check_linearizable_file(DATA / "knossos_register_bad.edn")
    assert r.valid is False and len(r.counterexample) == 3


def test_bad_edn_names_the_line(tmp_path):
    text = (DATA / "porcupine_kv_ok.edn").read_text().splitlines()
    text[4] = text[4][:30]  # truncate line 5
    p = tmp_path / "t.edn"
    p.write_text("\n".join(text) + "\n")
    with pytest.raises(ValueError, match=r"t\.edn:5: not valid EDN"):
        load_history(p)
    p.write_text("{:process 0, :type :invoke, :f :read, :time nil}\n")
    with pytest.raises(ValueError, match=r":1: time must be a finite number, got null"):
        load_history(p)
    p.write_text("{:process 0, :type :ok, :f :read, :time 1}\n")
    with pytest.raises(ValueError, match=r":1: ok for process 0 with no open invocation"):
        load_history(p)
