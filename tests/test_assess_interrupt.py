"""Ctrl-C during `medq assess`: the inputs assessed before it keep their results."""

from __future__ import annotations

import json

from pydicom.data import get_testdata_file

from conftest import run_medq
from medq.assess.predictor import Assessor, Interrupted


def _stopping(real):
    """`assess_many` stopped by Ctrl-C as its first chunk is done (as a user presses it)."""
    def assess_many(self, items, progress=None):
        def tick(n: int) -> None:
            if progress:
                progress(n)
            raise KeyboardInterrupt
        return real(self, items, progress=tick)
    return assess_many


def test_an_interrupted_batch_hands_back_what_it_assessed(monkeypatch) -> None:
    """The results of the chunks done before Ctrl-C come with the interruption, in order."""
    paths = [get_testdata_file(n) for n in ("CT_small.dcm", "MR_small.dcm", "CT_small.dcm")]
    assessor = Assessor(measures=False, batch_size=1)
    monkeypatch.setattr(Assessor, "assess_many", _stopping(Assessor.assess_many))
    try:
        assessor.assess_many(paths)
    except Interrupted as stop:
        (done,) = stop.done
        assert done.modality == "CT" and 1.0 <= done.score <= 5.0
    else:
        raise AssertionError("the interruption was swallowed")


def test_medq_assess_interrupted_prints_what_it_assessed_and_says_so(monkeypatch) -> None:
    """`medq assess DIR --json` stopped by Ctrl-C exited 130 with nothing on stdout or stderr:
    every result so far was lost without a word."""
    monkeypatch.setattr(Assessor, "assess_many", _stopping(Assessor.assess_many))
    ct, mr = get_testdata_file("CT_small.dcm"), get_testdata_file("MR_small.dcm")
    res = run_medq("assess", ct, mr, "--json", "--no-measures", "--batch-size", "1")
    assert res.returncode == 130
    (row,) = json.loads(res.stdout)
    assert row["path"] == ct and "score" in row
    assert "interrupted after 1 of 2 inputs; their results are printed" in res.stderr
