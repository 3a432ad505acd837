"""src/ngram.py and tools/build_lm.py: Kneser-Ney counts by hand, ARPA round trip, normalised distributions,
backoff arithmetic, KenLM agreement (when the kenlm module is installed), clear errors for broken files."""

from __future__ import annotations

import gzip
import math
from collections import Counter

import pytest

from src.ngram import BOS, EOS, UNK, ArpaModel, build_kneser_ney, count_ngrams, discounts, kneser_ney_counts
from tools import build_lm

SENTENCES = [s.split() for s in ("THE CAT SAT", "THE DOG SAT", "A CAT RAN", "THE CAT RAN", "A DOG SAT", "THE CAT")]


@pytest.fixture(scope="module")
def model() -> ArpaModel:
    return build_kneser_ney(SENTENCES, order=3)


def test_counts_and_continuation_counts_by_hand() -> None:
    raw = count_ngrams([["A", "B"], ["C", "B"]], 2)
    assert raw[0][("B",)] == 2 and raw[0][(BOS,)] == 2 and raw[0][(EOS,)] == 2
    assert raw[1][(BOS, "A")] == 1 and raw[1][("B", EOS)] == 2
    adjusted = kneser_ney_counts(raw)
    assert adjusted[0][("B",)] == 2  # preceded by A and by C
    assert adjusted[0][(EOS,)] == 1  # only ever preceded by B
    assert adjusted[1][("B", EOS)] == 2  # the top order keeps raw counts
    assert adjusted[1][(BOS, "A")] == 1


def test_discounts_closed_form_and_fallback() -> None:
    counts = Counter({i: c for i, c in enumerate([1] * 10 + [2] * 5 + [3] * 3 + [4] * 2)})
    y = 10 / (10 + 2 * 5)
    expected = (1 - 2 * y * 5 / 10, 2 - 3 * y * 3 / 5, 3 - 4 * y * 2 / 3)
    assert discounts(counts) == pytest.approx(expected)
    assert discounts(Counter({0: 1, 1: 1})) == (0.5, 1.0, 1.5)  # no count of 2: the closed form is undefined


@pytest.mark.parametrize("context", [(BOS,), ("THE",), (BOS, "THE"), ("THE", "CAT"), ("CAT", "SAT"), ("ZZZ",), ()])
def test_every_conditional_distribution_sums_to_one(model: ArpaModel, context: tuple) -> None:
    words = [w for w in model.vocabulary if w != BOS]
    total = sum(10 ** model.score(context, w)[0] for w in words)
    assert total == pytest.approx(1.0, abs=1e-5)


def test_seen_continuations_beat_unseen_ones(model: ArpaModel) -> None:
    after_the = model.score((BOS, "THE"), "CAT")[0]
    assert after_the > model.score((BOS, "THE"), "DOG")[0] > model.score((BOS, "THE"), "RAN")[0]
    assert model.score((), "NOTAWORD")[0] == model.score((), UNK)[0] < model.score((), "A")[0]


def test_backoff_is_the_product_of_weights(model: ArpaModel) -> None:
    # "DOG RAN" was never seen: p(RAN | A DOG) = bow(A DOG) * bow(DOG) * p(RAN)
    bow_a_dog = model.entries[1][("A", "DOG")][1]
    bow_dog = model.entries[0][("DOG",)][1]
    p_ran = model.entries[0][("RAN",)][0]
    assert ("DOG", "RAN") not in model.entries[1]
    assert model.score(("A", "DOG"), "RAN")[0] == pytest.approx(bow_a_dog + bow_dog + p_ran)


def test_state_keeps_only_extendable_history(model: ArpaModel) -> None:
    _, state = model.score(("THE", "CAT"), "SAT")
    assert state == ("CAT", "SAT")
    _, state = model.score(("THE", "CAT"), "NOTAWORD")
    assert state == (UNK,)  # "CAT <unk>" was never seen


def test_arpa_round_trip_plain_and_gzip(model: ArpaModel, tmp_path) -> None:
    for name in ("lm.arpa", "lm.arpa.gz"):
        path = model.write_arpa(tmp_path / name)
        again = ArpaModel.read_arpa(path)
        assert again.order == 3 and again.vocabulary == model.vocabulary
        for words in SENTENCES:
            assert again.sentence_log10(words) == pytest.approx(model.sentence_log10(words), abs=1e-5)
    with gzip.open(tmp_path / "lm.arpa.gz", "rt") as f:
        assert f.read().lstrip().startswith("\\data\\")


def test_header_and_sections_are_standard_arpa(model: ArpaModel, tmp_path) -> None:
    text = model.write_arpa(tmp_path / "lm.arpa").read_text()
    lines = text.strip().splitlines()
    assert lines[0] == "\\data\\" and lines[-1] == "\\end\\"
    for n in (1, 2, 3):
        assert f"ngram {n}={len(model.entries[n - 1])}" in lines and f"\\{n}-grams:" in lines
    trigram = next(line for line in lines[lines.index("\\3-grams:") + 1 :] if line)
    assert len(trigram.split("\t")) == 2  # the top order has no backoff weight
    assert f"-99\t{BOS}\t" in text


def test_agrees_with_kenlm(model: ArpaModel, tmp_path) -> None:
    kenlm = pytest.importorskip("kenlm")
    path = model.write_arpa(tmp_path / "lm.arpa")
    ken = kenlm.Model(str(path))
    for words in [*SENTENCES, ["DOG", "THE", "UNSEEN", "CAT"], ["SAT"]]:
        assert model.sentence_log10(words) == pytest.approx(ken.score(" ".join(words)), abs=1e-4)


@pytest.mark.parametrize(
    "content, message",
    [
        ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1.0\tA\n\n\\end\\\n", "header says 2 1-grams"),
        ("\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0\n\n\\end\\\n", ":5: expected 1 words"),
        ("\\data\\\nngram 1=1\n\n\\1-grams:\nx\tA\n\n\\end\\\n", ":5:"),
        ("just some text\n", "not an ARPA file"),
    ],
)
def test_broken_files_name_file_and_line(tmp_path, content: str, message: str) -> None:
    path = tmp_path / "bad.arpa"
    path.write_text(content)
    with pytest.raises(ValueError, match="bad.arpa") as err:
        ArpaModel.read_arpa(path)
    assert message in str(err.value)


def test_missing_unk_scores_like_kenlm(tmp_path) -> None:
    path = tmp_path / "tiny.arpa"
    path.write_text("\\data\\\nngram 1=3\n\n\\1-grams:\n-1\t<s>\n-0.5\tA\n-0.5\t</s>\n\n\\end\\\n")
    lm = ArpaModel.read_arpa(path)
    assert lm.score((BOS,), "B")[0] == -100.0


def test_build_lm_tool_skips_foreign_lines(tmp_path, capsys) -> None:
    text = tmp_path / "sents.txt"
    text.write_text("the cat sat\n\nthe  dog sat\nle café\n")
    out = tmp_path / "lm.arpa"
    assert build_lm.main(["--text", str(text), "--out", str(out), "--order", "2"]) == 0
    captured = capsys.readouterr()
    assert "skipped 1 lines" in captured.err and "2 sentences" in captured.out
    lm = ArpaModel.read_arpa(out)
    assert lm.order == 2 and {"THE", "CAT", "DOG", "SAT"} <= lm.vocabulary
    assert math.isclose(sum(10 ** lm.score(("THE",), w)[0] for w in lm.vocabulary - {BOS}), 1.0, abs_tol=1e-5)


def test_build_lm_tool_reports_a_missing_file(tmp_path, capsys) -> None:
    assert build_lm.main(["--text", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "lm.arpa")]) == 1
    assert "nope.txt" in capsys.readouterr().err
