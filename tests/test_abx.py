"""Inst-Sim-ABX reader, writer, Table 1 and the PAFT split (inmsrl.data.abx, inmsrl abx-table)."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest

from inmsrl.bin.main import main
from inmsrl.data.abx import (
    ALL_DIFF,
    ANSWERS_CSV,
    ONE_SHARED,
    AbxClip,
    AbxFormatError,
    AbxResponse,
    AbxTriplet,
    agreement_table,
    clip_path,
    confident,
    read_abx_set,
    split_train_test,
    write_abx_set,
)

CLIP = 219136  # (44100 * 5 // 2048) * 2048

# Table 1 of the paper: (triplets above 75%, responses in them) per condition and instrument.
PAPER_TABLE1 = {
    ALL_DIFF: {"drums": (115, 1163), "bass": (112, 1128), "piano": (106, 1083), "guitar": (105, 1085)},
    ONE_SHARED: {"drums": (214, 2163), "bass": (194, 1959), "piano": (215, 2159), "guitar": (213, 2134)},
}


@pytest.fixture(scope="module")
def real_abx(inst_sim_abx: Path):
    return read_abx_set(inst_sim_abx)


def _clip(set_id: int, sample_id: int, instrument: str, letter: str, track: int, segment: int,
          offset: int = 0) -> AbxClip:
    start = segment * CLIP + offset
    path = clip_path(set_id, sample_id, instrument, letter, track, segment)
    return AbxClip(track, start, start + CLIP, path, segment)


def _triplet(set_id: int, instrument: str, condition: str, votes: str, experiment: str = "ex2001",
             sample_id: int = 0, swapped_every: int = 0) -> AbxTriplet:
    """A synthetic triplet answered ``votes`` (a string of 'a'/'b', one per subject)."""
    base = 1000 + 10 * set_id
    x = _clip(set_id, sample_id, instrument, "X", base, 3, offset=17)
    if condition == ONE_SHARED:
        a = _clip(set_id, sample_id, instrument, "Y", base, 9)
        b = _clip(set_id, sample_id, instrument, "C", base + 1, 4)
    else:
        a = _clip(set_id, sample_id, instrument, "A", base + 1, 5)
        b = _clip(set_id, sample_id, instrument, "B", base + 2, 6)
    responses = tuple(
        AbxResponse(experiment, f"subject{i}", "A+" if vote == "a" else "B-",
                    timbre="A-" if i % 2 else None, rhythm=None, melody="B+", choice_time_ms=1000 + i,
                    swapped=bool(swapped_every) and i % swapped_every == 0)
        for i, vote in enumerate(votes))
    return AbxTriplet(set_id, sample_id, instrument, condition, x, a, b, responses)


def _rewrite_csv(directory: Path, edit) -> None:
    """Apply ``edit(rows)`` to the answers CSV (a list of lists, header first)."""
    path = directory / ANSWERS_CSV
    with path.open(newline="") as stream:
        rows = list(csv.reader(stream))
    edit(rows)
    with path.open("w", newline="") as stream:
        csv.writer(stream, lineterminator="\n").writerows(rows)


# -- the real data -------------------------------------------------------------------------------------

def test_real_data_reproduces_paper_table1(real_abx):
    table = agreement_table(real_abx.triplets, 0.75)
    for condition, cells in PAPER_TABLE1.items():
        for instrument, (triplets, responses) in cells.items():
            cell = table[(instrument, condition)]
            assert (cell.confident_triplets, cell.confident_responses) == (triplets, responses), (
                instrument, condition)
    # 240 triplets per instrument and condition, six instruments (residuals and mix too).
    assert {cell.triplets for cell in table.values()} == {240}
    assert {instrument for instrument, _ in table} == {"drums", "bass", "piano", "guitar", "residuals", "mix"}


def test_real_data_counts_valid_responses_without_attention_checks(real_abx):
    # §2.3: "a total of 26,898 valid responses"; the CSV's other 1197 rows are the dummy questions.
    assert real_abx.num_responses == 26898
    assert real_abx.attention_checks == 1197
    paths = {clip.path for t in real_abx.triplets for clip in (t.x, t.a, t.b)}
    assert not any("dummy" in path for path in paths)


def test_strict_threshold_matters_on_real_data(real_abx):
    # Some triplets sit at exactly 75% (e.g. 6 of 8); ">= 0.75" would not give the paper's numbers.
    at_boundary = [t for t in real_abx.triplets if t.agreement == 0.75]
    assert at_boundary
    assert not any(t.is_confident(0.75) for t in at_boundary)


def test_real_clips_resolve_to_5s_sample_ranges_from_the_json(real_abx):
    assert {clip.num_samples for t in real_abx.triplets for clip in (t.x, t.a, t.b)} == {CLIP}
    by_path = {clip.path: clip for t in real_abx.triplets for clip in (t.x, t.a, t.b)}
    x = by_path["set0/0/drums/X_2064-23.wav"]
    assert (x.track, x.start, x.end, x.sample_rate) == (2064, 23 * CLIP, 24 * CLIP, 44100)
    # index_s is not always seg * 219136: the JSON, not the file name, gives the position.
    b = by_path["set0/0/drums/B_2031-26.wav"]
    assert (b.track, b.start, b.end) == (2031, 5697707, 5697707 + CLIP)


def test_real_conditions_follow_the_letters_not_the_json_test_names(real_abx):
    for triplet in real_abx.triplets:
        if triplet.condition == ONE_SHARED:
            assert (triplet.a.letter, triplet.b.letter) == ("Y", "C")
            assert triplet.a.track == triplet.x.track != triplet.b.track
        else:
            assert (triplet.a.letter, triplet.b.letter) == ("A", "B")
            assert len({triplet.x.track, triplet.a.track, triplet.b.track}) == 3


def test_real_data_round_trips_through_the_writer(real_abx, tmp_path):
    write_abx_set(tmp_path, real_abx.triplets)
    again = read_abx_set(tmp_path)
    assert again.triplets == real_abx.triplets
    assert [t.responses for t in again.triplets] == [t.responses for t in real_abx.triplets]


def test_cli_prints_table1(inst_sim_abx, capsys):
    assert main(["abx-table", "--abx-dir", str(inst_sim_abx)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line.split() for line in lines if line.split()[:4] == ["drums", "bass", "piano", "guitar"])
    # The "above 75%" rows: triplets (All-Diff, One-Shared), then responses (All-Diff, One-Shared).
    above = [line.split()[-len(header):][:4] for line in lines if line.startswith("  above 75%")]
    assert above == [["115", "112", "106", "105"], ["214", "194", "215", "213"],
                     ["1163", "1128", "1083", "1085"], ["2163", "1959", "2159", "2134"]]


def test_cli_json(inst_sim_abx, capsys):
    assert main(["abx-table", "--abx-dir", str(inst_sim_abx), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["table"]["guitar"]["One-Shared"]["confident_responses"] == 2134


# -- synthetic sets: rules, errors, writer ---------------------------------------------------------------

def test_agreement_rule_is_strictly_above_threshold():
    three_of_four = _triplet(0, "drums", ALL_DIFF, "aaab")
    four_of_five = _triplet(1, "drums", ALL_DIFF, "bbbba")
    tie = _triplet(2, "drums", ALL_DIFF, "abab")
    assert three_of_four.agreement == 0.75 and not three_of_four.is_confident(0.75)
    assert four_of_five.is_confident(0.75)
    assert confident([three_of_four, four_of_five, tie]) == [four_of_five]
    assert (four_of_five.positive, four_of_five.negative) == (four_of_five.b, four_of_five.a)
    assert three_of_four.majority == "a" and tie.majority is None
    with pytest.raises(ValueError, match="no majority"):
        _ = tie.positive


def test_round_trip_keeps_screen_order_answers_and_experiments(tmp_path):
    triplets = [
        _triplet(0, "drums", ALL_DIFF, "aab", swapped_every=0),
        _triplet(0, "drums", ONE_SHARED, "aaaab", swapped_every=2),
        _triplet(1, "guitar", ONE_SHARED, "ab", experiment="ex2002"),
        _triplet(2, "mix", ALL_DIFF, "bbb", experiment="ex2002"),
    ]
    write_abx_set(tmp_path, triplets)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "dict_triplet_2001.json", "dict_triplet_2002.json", ANSWERS_CSV]
    with (tmp_path / ANSWERS_CSV).open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    # A swapped One-Shared response is shown as X, C, Y and its answer refers to the screen order.
    swapped = next(r for r in rows if r["sample_a"].split("/")[-1].startswith("C"))
    assert swapped["answer_total"] == "B+" and swapped["answer_rhythm"] == "NA"
    # The JSON keeps the original files' naming: One-Shared under test1, All-Diff under test2.
    clip_dict = json.loads((tmp_path / "dict_triplet_2001.json").read_text())
    assert set(clip_dict["0"]["0"]["test1"]["drums"]) == {"X", "Y", "C"}
    assert set(clip_dict["0"]["0"]["test2"]["drums"]) == {"X", "A", "B"}
    again = read_abx_set(tmp_path)
    assert list(again.triplets) == sorted(triplets, key=lambda t: (t.set_id, t.key))
    assert again.triplets[1].votes_a == 4 and again.triplets[1].votes_b == 1


def test_condition_comes_from_letters_even_if_json_tests_are_renamed(tmp_path):
    write_abx_set(tmp_path, [_triplet(0, "bass", ONE_SHARED, "aab", swapped_every=1)])
    path = tmp_path / "dict_triplet_2001.json"
    clip_dict = json.loads(path.read_text())
    clip_dict["0"]["0"] = {"test2": clip_dict["0"]["0"]["test1"]}  # mislabelled, as in the real files
    path.write_text(json.dumps(clip_dict))
    (triplet,) = read_abx_set(tmp_path).triplets
    assert triplet.condition == ONE_SHARED and triplet.a.letter == "Y"
    assert triplet.votes_a == 2  # "B" on screen was Y for every swapped response


def test_attention_checks_are_dropped_and_failures_reported(tmp_path):
    write_abx_set(tmp_path, [_triplet(0, "piano", ALL_DIFF, "aaab")])

    def add_checks(rows):
        rows.append(["9", "ex2001", "subject0", "samples/dummyX1.wav", "samples/dummyX1.wav",
                     "samples/dummyB1.wav", "A+", "A+", "A+", "A+", "100"])
        rows.append(["10", "ex2001", "subject3", "samples/dummyX2.wav", "samples/dummyA2.wav",
                     "samples/dummyX2.wav", "A+", "A+", "A+", "A+", "100"])  # wrong: chose A, not X
    _rewrite_csv(tmp_path, add_checks)
    abx = read_abx_set(tmp_path)
    assert abx.attention_checks == 2 and abx.failed_attention_subjects == ("ex2001/subject3",)
    assert abx.triplets[0].num_responses == 4
    strict = read_abx_set(tmp_path, drop_failed_subjects=True)
    assert [r.subject_id for r in strict.triplets[0].responses] == ["subject0", "subject1", "subject2"]


def test_split_is_seeded_stratified_and_disjoint():
    triplets = [_triplet(i, instrument, condition, "aaab", sample_id=k)
                for i in range(5) for k in range(4)
                for instrument in ("drums", "bass") for condition in (ALL_DIFF, ONE_SHARED)]
    train, test = split_train_test(triplets, 0.7, seed=3)
    assert {t.key for t in train}.isdisjoint({t.key for t in test})
    assert len(train) + len(test) == len(triplets)
    for instrument in ("drums", "bass"):
        for condition in (ALL_DIFF, ONE_SHARED):
            assert sum(t.instrument == instrument and t.condition == condition for t in train) == 14
    again = split_train_test(list(reversed(triplets)), 0.7, seed=3)
    assert [t.key for t in again[0]] == [t.key for t in train]
    other = split_train_test(triplets, 0.7, seed=4)
    assert [t.key for t in other[0]] != [t.key for t in train]


def test_score_splits_partition_the_confident_triplets():
    # "inmsrl score --abx-split train" scores exactly the confident triplets PAFT learns from, "test" the
    # held-out rest; together they are the confident ones of "all".
    from inmsrl.eval.scoring import abx_evaluation_set

    triplets = [_triplet(i, instrument, ALL_DIFF, "aaaaa" if (i + k) % 3 else "aabbb", sample_id=k)
                for i in range(5) for k in range(4) for instrument in ("drums", "bass")]
    keys = {split: [t.key for t in abx_evaluation_set(triplets, split, 0.7, seed=3)]
            for split in ("all", "train", "test")}
    held_out = [t.key for t in confident(split_train_test(triplets, 0.7, seed=3)[1])]
    assert keys["test"] == held_out and set(keys["train"]).isdisjoint(keys["test"])
    assert sorted(keys["train"] + keys["test"]) == sorted(keys["all"])
    assert 0 < len(keys["all"]) < len(triplets)
    with pytest.raises(ValueError, match="'all', 'test' or 'train'"):
        abx_evaluation_set(triplets, "valid", 0.7, seed=3)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda rows: rows[2].__setitem__(4, "set0/0/drums/Q_1001-5.wav"),
     r"answers\.csv:3: malformed clip path"),
    (lambda rows: rows[3].__setitem__(9, "maybe"), r"answers\.csv:4: answer_total = 'maybe'"),
    (lambda rows: rows[1].__setitem__(9, "NA"), r"answers\.csv:2: answer_total = 'NA'"),
    (lambda rows: rows[1].__setitem__(6, "C+"), r"answers\.csv:2: answer_timbre = 'C\+'"),
    (lambda rows: rows[2].__setitem__(10, "soon"), r"answers\.csv:3: choice_time 'soon'"),
    (lambda rows: [row.pop(9) for row in rows], r"answers\.csv:1: missing column\(s\) answer_total"),
    (lambda rows: rows[1].__setitem__(5, "set0/0/drums/C_1002-6.wav"), r"answers\.csv:2: samples A and C"),
    (lambda rows: rows[1].__setitem__(1, "exp 7"), r"answers\.csv:2: ex_name 'exp 7'"),
])
def test_malformed_rows_name_file_and_line(tmp_path, edit, message):
    write_abx_set(tmp_path, [_triplet(0, "drums", ALL_DIFF, "aab")])
    _rewrite_csv(tmp_path, edit)
    with pytest.raises(AbxFormatError, match=message):
        read_abx_set(tmp_path)


def test_json_that_disagrees_with_the_answers_is_an_error(tmp_path):
    write_abx_set(tmp_path, [_triplet(0, "drums", ALL_DIFF, "aab")])
    path = tmp_path / "dict_triplet_2001.json"
    clip_dict = json.loads(path.read_text())
    clip_dict["0"]["0"]["test2"]["drums"]["A"]["ID"] = 7
    path.write_text(json.dumps(clip_dict))
    with pytest.raises(AbxFormatError, match=r"answers\.csv:2: set0/0/drums/A_1001-5\.wav does not match"):
        read_abx_set(tmp_path)
    path.unlink()
    with pytest.raises(AbxFormatError, match=r"dict_triplet_2001\.json: clip dictionary not found"):
        read_abx_set(tmp_path)


def _session_ordered_set(directory: Path) -> None:
    """Eight triplets of set 0 answered by four subjects, written session by session like the public
    data: each subject's answers to the whole set in a row."""
    write_abx_set(directory, [_triplet(0, instrument, condition, "aabb", sample_id=sample)
                              for sample in (0, 1) for instrument in ("drums", "bass")
                              for condition in (ALL_DIFF, ONE_SHARED)])

    def by_subject(rows):
        body = sorted(rows[1:], key=lambda row: row[2])  # stable: the set's order within a session
        rows[1:] = [[str(index), *row[1:]] for index, row in enumerate(body)]
    _rewrite_csv(directory, by_subject)


def test_a_file_cut_on_a_line_boundary_is_warned_about(tmp_path, caplog):
    _session_ordered_set(tmp_path)
    assert read_abx_set(tmp_path).warnings == ()
    _rewrite_csv(tmp_path, lambda rows: rows.__delitem__(slice(-2, None)))  # the last session loses two
    with caplog.at_level(logging.WARNING, logger="inmsrl.data.abx"):
        abx = read_abx_set(tmp_path)
    assert len(abx.triplets) == 8 and abx.num_responses == 30  # still read ...
    (warning,) = abx.warnings                                   # ... but not silently
    assert warning == (f"{tmp_path / ANSWERS_CSV}:31: the file ends inside a session: ex2001 subject3 "
                       "answered 6 of the 8 triplets of set 0, while 3 of 4 ex2001 sessions answered all of "
                       "their set: the file may be cut short")
    assert warning in caplog.text


def test_answers_missing_for_triplets_of_the_clip_dictionary_are_warned_about(tmp_path):
    write_abx_set(tmp_path, [_triplet(0, instrument, ALL_DIFF, "aab") for instrument in ("drums", "bass")])
    assert read_abx_set(tmp_path).warnings == ()
    _rewrite_csv(tmp_path, lambda rows: rows.__delitem__(slice(-3, None)))  # every answer to bass
    (warning,) = read_abx_set(tmp_path).warnings
    assert warning.startswith(f"{tmp_path / ANSWERS_CSV}: 1 triplet(s) that dict_triplet_2001.json holds for "
                              "set 0, which ex2001 answered, have no answer (set0/0/bass/All-Diff)")


def test_a_gap_in_the_row_index_is_warned_about(tmp_path):
    write_abx_set(tmp_path, [_triplet(0, "drums", ALL_DIFF, "aabab")])
    _rewrite_csv(tmp_path, lambda rows: rows.__delitem__(3))
    (warning,) = read_abx_set(tmp_path).warnings
    assert warning == (f"{tmp_path / ANSWERS_CSV}:4: row index '3' where 2 was expected: rows are missing or "
                       "out of order")


def test_the_real_data_cut_short_is_warned_about(inst_sim_abx, tmp_path):
    for name in (ANSWERS_CSV, "dict_triplet_202404.json", "dict_triplet_202407.json"):
        (tmp_path / name).write_bytes((inst_sim_abx / name).read_bytes())
    lines = (tmp_path / ANSWERS_CSV).read_text().splitlines(keepends=True)
    (tmp_path / ANSWERS_CSV).write_text("".join(lines[:-3]))
    (warning,) = read_abx_set(tmp_path).warnings
    assert "the file ends inside a session: ex202407 subject281 answered 45 of the 48 triplets" in warning


@pytest.mark.parametrize(("write", "message"), [
    (lambda d: (d / ANSWERS_CSV).write_bytes(b",ex_name\xff\n"), r"answers\.csv: not UTF-8 text"),
    (lambda d: (d / ANSWERS_CSV).write_text((d / ANSWERS_CSV).read_text().splitlines()[0] + "\n"),
     r"answers\.csv: no answers below the header"),
    (lambda d: (d / "dict_triplet_2001.json").write_text("[]"), r"2001\.json: expected an object of sets"),
    (lambda d: (d / "dict_triplet_2001.json").write_text('{"0": {"0": []}}'),
     r"set 0 -> sample 0 is not an object of tests"),
])
def test_malformed_files_are_errors_naming_the_file(tmp_path, capsys, write, message):
    write_abx_set(tmp_path, [_triplet(0, "drums", ALL_DIFF, "aab")])
    write(tmp_path)
    with pytest.raises(AbxFormatError, match=message):
        read_abx_set(tmp_path)
    assert main(["abx-table", "--abx-dir", str(tmp_path)]) == 1
    assert "inmsrl abx-table: " in capsys.readouterr().err


def test_writer_refuses_what_the_reader_could_not_read_back(tmp_path):
    unanswered = AbxTriplet(0, 0, "drums", ALL_DIFF, *(_triplet(0, "drums", ALL_DIFF, "a").x,) * 3)
    with pytest.raises(ValueError, match="no responses"):
        write_abx_set(tmp_path, [unanswered])
    with pytest.raises(ValueError, match="given twice"):
        write_abx_set(tmp_path, [_triplet(0, "drums", ALL_DIFF, "a")] * 2)
