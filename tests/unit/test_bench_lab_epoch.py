"""bench/lab_epoch.py: the generated corpus (lengths, audio, transcripts) and the reading of /usr/bin/time -v."""

from __future__ import annotations

import pytest

from bench.lab_epoch import clip_lengths, make_corpus, peak_rss_gb


def test_clip_lengths_spread_evenly_or_cycle_the_given_ones():
    assert clip_lengths(5, 1.0, 17.0) == [1.0, 5.0, 9.0, 13.0, 17.0]
    assert clip_lengths(5, 1.0, 17.0, "2,4") == [2.0, 4.0, 2.0, 4.0, 2.0]


def test_peak_rss_is_read_from_the_time_report():
    report = "\tCommand being timed: ...\n\tMaximum resident set size (kbytes): 9437184\n\tExit status: 0\n"
    assert peak_rss_gb(report) == pytest.approx(9.0)
    assert peak_rss_gb("no report") is None


def test_corpus_clips_have_the_target_lengths_and_speakable_transcripts(tmp_path):
    import json

    import soundfile as sf

    from bench.lab_epoch import REPO_ROOT
    from src.text import BLANK, load_labels

    allowed = set(load_labels(REPO_ROOT / "labels.json")) - {BLANK}
    manifest = make_corpus(tmp_path / "corpus", [1.0, 6.5], seed=3)
    rows = [line.split(",") for line in manifest.read_text().splitlines()]
    assert len(rows) == 2
    for (wav, txt), target in zip(rows, [1.0, 6.5]):
        info = sf.info(wav)
        assert info.samplerate == 16000 and info.frames == int(target * 16000)
        audio, _ = sf.read(wav)
        assert abs(audio).max() > 0.05  # speech, not silence
        text = open(txt).read().strip()
        assert text and set(text) <= allowed, json.dumps(text)
    assert len(open(rows[1][1]).read().split()) > len(open(rows[0][1]).read().split())  # longer clip, more words
