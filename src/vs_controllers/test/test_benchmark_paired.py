"""Paired comparison of two benchmark journals (vs_controllers.benchmark.paired)."""

from __future__ import annotations

import gzip
import json

import pytest
from vs_common.core.errors import InputError
from vs_controllers.benchmark.paired import compare, load_journal, main


def _rec(scene, ok, steps=100, te=0.001, re=0.05):
    return {"scene_id": scene, "success_cns": ok, "steps": steps, "te_m": te, "re_deg": re}


def _write(path, recs, gz=False):
    text = "".join(json.dumps({"identity": {"scene_id": r["scene_id"]}, "record": r}) + "\n" for r in recs)
    if gz:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def test_discordant_scenes_and_paired_differences():
    a = {f"s{i}": _rec(f"s{i}", True, steps=100 + i) for i in range(20)}
    b = {f"s{i}": _rec(f"s{i}", i >= 2, steps=110 + i) for i in range(20)}
    b["extra"] = _rec("extra", True)  # not in A: not compared
    c = compare(a, b)
    assert c["n"] == 20 and c["only_a"] == ["s0", "s1"] and c["only_b"] == [] and c["both"] == 18
    assert c["sr_a"] == 1.0 and c["sr_b"] == 0.9
    assert c["mcnemar_p"] == pytest.approx(0.5)  # 2 of 2 discordant one way: 2 * 0.5**2
    assert c["ts_median_diff"] == -10.0 and c["ts_p"] < 1e-3  # A ten steps faster on every scene
    assert c["te_mm_median_diff"] == 0.0


def test_journals_read_back_plain_and_gzipped_the_last_record_of_a_scene_winning(tmp_path):
    plain = _write(tmp_path / "a.jsonl", [_rec("s0", False), _rec("s0", True, steps=7)])
    gz = _write(tmp_path / "b.jsonl.gz", [_rec("s0", True, steps=9)], gz=True)
    assert load_journal(plain)["s0"]["steps"] == 7 and load_journal(gz)["s0"]["steps"] == 9
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(InputError, match="bad.jsonl:1"):
        load_journal(tmp_path / "bad.jsonl")
    with pytest.raises(InputError, match="share no scene"):
        compare({"x": _rec("x", True)}, {"y": _rec("y", True)})


def test_the_cli_prints_the_table_and_refuses_bad_input(tmp_path, capsys):
    a = _write(tmp_path / "a.jsonl", [_rec(f"s{i}", True, steps=100 + i) for i in range(5)])
    b = _write(tmp_path / "b.jsonl", [_rec(f"s{i}", i > 0, steps=90 + 2 * i) for i in range(5)])
    assert main([str(a), str(b), "--names", "depth_pc,cns"]) == 0
    out = capsys.readouterr().out
    assert "| SR (CNS) | 100.0 % | 80.0 % | solved only by depth_pc: 1, only by cns: 0" in out
    assert "Only depth_pc: s0" in out
    assert main([str(a), str(tmp_path / "missing.jsonl")]) == 2
    assert "no journal" in capsys.readouterr().err
