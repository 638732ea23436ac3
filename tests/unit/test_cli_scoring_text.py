"""What `train` prints about its windows: how many cutoffs and rows it used."""

from __future__ import annotations

from api.cli_scoring import _window_lines


def test_train_says_how_many_cutoffs_and_rows_it_used():
    window = {
        "horizon_days": 270,
        "gap_days": 62.7,
        "labels_overlap": True,
        "windows": [
            {"split": "train", "cutoff": "2025-03-01T00:00:00+00:00", "rows": 900},
            {"split": "train", "cutoff": "2025-01-30T00:00:00+00:00", "rows": 800},
            {"split": "validation", "cutoff": "2025-05-03T00:00:00+00:00", "rows": 1000},
            {"split": "holdout", "cutoff": "2025-07-05T00:00:00+00:00", "rows": 1100},
        ],
    }
    lines = _window_lines(window)
    assert lines[0].strip() == (
        "trained on 2 cutoffs (2025-01-30 to 2025-03-01), 1,700 rows; horizon 270 days"
    )
    assert "validation at 2025-05-03: 1,000 rows" in lines[1]
    assert "holdout at 2025-07-05: 1,100 rows" in lines[2]
    assert "overlap" in lines[3]
    assert not any("overlap" in line for line in _window_lines({**window, "labels_overlap": False}))
