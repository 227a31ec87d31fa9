"""bench.speakers --browsers: bursts matched to the onsets heard."""

from __future__ import annotations

from bench._browser_speakers import match_onsets


def test_each_burst_takes_the_first_onset_after_it_within_the_window() -> None:
    sent = [1000.0, 2000.0, 3000.0, 4000.0]
    heard = [990.0, 1095.0, 1130.0, 2101.0, 3990.0, 4200.0]
    # 990 came before the first burst; 3000's onset never came (3990 is past its window).
    assert match_onsets(sent, heard, 900.0) == [95.0, 101.0, 200.0]
