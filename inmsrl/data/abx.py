"""Reading and writing Inst-Sim-ABX listening-test data (Hashizume & Toda, ICASSP 2025; paper §2.3).

The public release is one answers CSV plus one clip dictionary per experiment::

    inst_sim_abx_answers.csv      ,ex_name,subject_id,reference,sample_a,sample_b,answer_timbre,
                                  answer_rhythm,answer_melody,answer_total,choice_time
    dict_triplet_<tag>.json       set -> sample -> test -> instrument -> letter ->
                                  {ID, seg, filename, sr, index_s, index_e}

What the data shows (checked against the real files, and relied on here):

* Rows whose clip paths are ``samples/dummy*.wav`` are attention checks (A or B is X itself); they are
  not data. The paper's "26,898 valid responses" are exactly the non-dummy rows. Three sessions of
  ``ex202407`` miss one check, yet the paper's counts include their answers, so failing subjects are
  kept unless ``drop_failed_subjects=True``.
* A clip path is ``set{S}/{k}/{instrument}/{L}_{track}-{seg}.wav``. The reference is always X; the pair
  is A/B (All-Diff: three different tracks) or Y/C (One-Shared: Y is another segment of X's track, C
  another track), shown as XAB, XYC or XCY. The condition comes from the letters (a Y means
  One-Shared): the JSON calls the XYC triplets "test1" and the XAB ones "test2", the opposite of its
  README, so the test names are never trusted — a clip is looked up in whichever test holds the
  triplet's letters.
* ``ex_name`` ``ex<tag>`` belongs to ``dict_triplet_<tag>.json`` (ex202404 -> 202404: no ``mix``;
  ex202407 -> 202407: adds ``mix``). Both dictionaries hold sets 0-79 and agree on every entry they
  share; the answers use sets 0-59 with 4 samples each, i.e. 240 triplets per instrument and condition.
* The same (set, sample, instrument, condition) was asked in both experiments, so a triplet's identity
  is that 4-tuple, NOT (experiment, ...): answers of both experiments are pooled. No subject answered a
  triplet twice.
* The decision is ``answer_total``; ``A+``/``A-`` both mean A (the sign is confidence). A triplet is
  kept for evaluation when its majority share is strictly above the threshold (``> 0.75``: 3 of 4 is
  not kept). With these rules the kept counts and their responses reproduce the paper's Table 1
  exactly (e.g. All-Diff drums 115 triplets / 1163 responses). The one cell of Table 1 that does not
  match is "all responses, One-Shared, piano": the data holds 2416, the paper prints 2425.
* ``index_e - index_s`` is 219,136 samples (5 s at 44.1 kHz, a multiple of 2048) for every clip, but
  ``index_s`` is not always ``seg * 219136``, so clip positions come from the JSON, never from ``seg``.

A triplet's ``a``/``b`` are canonical, not the on-screen order: A/B for All-Diff and Y/C for
One-Shared. Each response's answers are stored relative to that order, with ``swapped`` recording that
the screen showed (b, a); :func:`write_abx_set` uses it to write the same rows back.

A file that lost rows — cut on a line boundary, or with lines deleted — still parses, so the reader
looks for the traces and warns (:attr:`AbxSet.warnings`): the pandas index column must count 0, 1, 2,
...; every triplet that a clip dictionary holds for a set the experiment answered must have answers
(true of the public data, and of what :func:`write_abx_set` writes); and a file written session by
session, as the public data is, must not end in a session that answers only part of its set while
most sessions of that experiment answer all of it. A cut exactly at a session boundary leaves no trace.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

ANSWERS_CSV = "inst_sim_abx_answers.csv"
CSV_COLUMNS = ("ex_name", "subject_id", "reference", "sample_a", "sample_b", "answer_timbre",
               "answer_rhythm", "answer_melody", "answer_total", "choice_time")
ANSWER_VALUES = ("A+", "A-", "B+", "B-")
NOT_ANSWERED = ("NA", "N/A")  # the data writes NA, its README N/A; both mean "no opinion"
CRITERIA = ("timbre", "rhythm", "melody")

ALL_DIFF = "All-Diff"
ONE_SHARED = "One-Shared"
CONDITIONS = (ALL_DIFF, ONE_SHARED)
# The canonical (a, b) letters of each condition; X is always the reference.
PAIR_LETTERS = {ALL_DIFF: ("A", "B"), ONE_SHARED: ("Y", "C")}
# The JSON's own (misleading) test names; used only when writing, to match the real files.
JSON_TEST_NAME = {ONE_SHARED: "test1", ALL_DIFF: "test2"}

AGREEMENT_THRESHOLD = 0.75
# The instruments of the Inst-Sim-ABX release (clips of Slakh tracks), in the paper's column order; a
# part of the format, like the letters above, used only to order ABX tables (others come after them).
INSTRUMENT_ORDER = ("drums", "bass", "piano", "guitar", "residuals", "mix")

_CLIP_PATH = re.compile(r"^set(\d+)/(\d+)/([A-Za-z0-9_]+)/([XABYC])_(\d+)-(\d+)\.wav$")
_ATTENTION_CHECK = re.compile(r"^samples/dummy[^/]*\.wav$")
_EXPERIMENT = re.compile(r"^ex([A-Za-z0-9_]+)$")


class AbxFormatError(ValueError):
    """ABX answers or clip dictionaries that do not follow the Inst-Sim-ABX format."""


class AbxClipError(ValueError):
    """An ABX clip that the dump meant to hold its audio does not hold (track or sample rate)."""


@dataclass(frozen=True)
class AbxClip:
    """One 5 s clip: ``samples [start, end)`` of Slakh track ``track``, named ``path`` in the answers."""

    track: int
    start: int
    end: int
    path: str
    segment: int
    sample_rate: int = 44100

    @property
    def num_samples(self) -> int:
        return self.end - self.start

    @property
    def letter(self) -> str:
        """X, A, B, Y or C: the clip's role in its triplet."""
        return Path(self.path).name[0]


@dataclass(frozen=True)
class AbxResponse:
    """One subject's answer to one triplet, in the triplet's canonical (a, b) terms.

    ``total`` is one of A+ A- B+ B- (A = the triplet's ``a``); the criteria may be None (N/A).
    ``swapped`` means the screen showed ``b`` as "A" and ``a`` as "B".
    """

    experiment: str
    subject_id: str
    total: str
    timbre: str | None = None
    rhythm: str | None = None
    melody: str | None = None
    choice_time_ms: int = 0
    swapped: bool = False

    @property
    def chose_a(self) -> bool:
        return self.total[0] == "A"


@dataclass(frozen=True)
class AbxTriplet:
    """A reference X and a pair (a, b) with every answer it received, pooled over experiments."""

    set_id: int
    sample_id: int
    instrument: str
    condition: str
    x: AbxClip
    a: AbxClip
    b: AbxClip
    responses: tuple[AbxResponse, ...] = field(default=(), repr=False)

    @property
    def key(self) -> str:
        """Stable name, e.g. ``set2/2/piano/One-Shared``."""
        return f"set{self.set_id}/{self.sample_id}/{self.instrument}/{self.condition}"

    @property
    def votes_a(self) -> int:
        return sum(response.chose_a for response in self.responses)

    @property
    def votes_b(self) -> int:
        return len(self.responses) - self.votes_a

    @property
    def num_responses(self) -> int:
        return len(self.responses)

    @property
    def majority(self) -> str | None:
        """"a" or "b", whichever more subjects judged closer to X; None on a tie or without answers."""
        if self.votes_a == self.votes_b:
            return None
        return "a" if self.votes_a > self.votes_b else "b"

    @property
    def agreement(self) -> float:
        """Share of responses that agree with the majority (0.5 on a tie, 0.0 without answers)."""
        if not self.responses:
            return 0.0
        return max(self.votes_a, self.votes_b) / len(self.responses)

    def is_confident(self, threshold: float = AGREEMENT_THRESHOLD) -> bool:
        """True when strictly more than ``threshold`` of the answers agree (the paper's "> 75%")."""
        return self.agreement > threshold

    @property
    def positive(self) -> AbxClip:
        """The clip judged more similar to X (PAFT's positive)."""
        return self._by_majority(winner=True)

    @property
    def negative(self) -> AbxClip:
        """The clip judged less similar to X (PAFT's negative)."""
        return self._by_majority(winner=False)

    def _by_majority(self, winner: bool) -> AbxClip:
        majority = self.majority
        if majority is None:
            raise ValueError(f"ABX triplet {self.key} has no majority "
                             f"({self.votes_a} vs {self.votes_b} votes)")
        return self.a if (majority == "a") == winner else self.b


@dataclass(frozen=True)
class AbxSet:
    """Everything read from one ABX directory."""

    root: Path
    triplets: tuple[AbxTriplet, ...]
    attention_checks: int = 0
    failed_attention_subjects: tuple[str, ...] = ()  # "experiment/subject" that missed a check
    warnings: tuple[str, ...] = ()  # signs of lost rows (see the module docstring), also logged

    @property
    def num_responses(self) -> int:
        return sum(t.num_responses for t in self.triplets)


@dataclass(frozen=True)
class _ClipRef:
    """What a clip path in the answers says, before the JSON gives its sample positions."""

    set_id: int
    sample_id: int
    instrument: str
    letter: str
    track: int
    segment: int
    path: str


@dataclass(frozen=True)
class AbxTableCell:
    """Counts of one (instrument, condition) cell of the paper's Table 1."""

    triplets: int = 0
    responses: int = 0
    confident_triplets: int = 0
    confident_responses: int = 0


def parse_clip_path(text: str, where: str = "") -> _ClipRef:
    """Split ``set{S}/{k}/{inst}/{L}_{track}-{seg}.wav``; ``where`` prefixes the error (file:line)."""
    match = _CLIP_PATH.match(text)
    if match is None:
        raise AbxFormatError(f"{where}malformed clip path {text!r}: expected "
                             "set{S}/{k}/{instrument}/{X|A|B|Y|C}_{track}-{seg}.wav")
    set_id, sample_id, instrument, letter, track, segment = match.groups()
    return _ClipRef(int(set_id), int(sample_id), instrument, letter, int(track), int(segment), text)


def clip_path(set_id: int, sample_id: int, instrument: str, letter: str, track: int, segment: int) -> str:
    """The answers' name for a clip (the inverse of :func:`parse_clip_path`)."""
    return f"set{set_id}/{sample_id}/{instrument}/{letter}_{track}-{segment}.wav"


def json_name(experiment: str) -> str:
    """``ex202404`` -> ``dict_triplet_202404.json``: the clip dictionary an experiment's answers use."""
    match = _EXPERIMENT.match(experiment)
    if match is None:
        raise AbxFormatError(f"experiment name {experiment!r} is not of the form ex<tag>")
    return f"dict_triplet_{match.group(1)}.json"


def _condition(reference: _ClipRef, first: _ClipRef, second: _ClipRef, where: str) -> str:
    """All-Diff or One-Shared from the letters and tracks of the three clips; errors when inconsistent."""
    if reference.letter != "X":
        raise AbxFormatError(f"{where}the reference {reference.path!r} is not an X clip")
    if (reference.set_id, reference.sample_id, reference.instrument) != (
            first.set_id, first.sample_id, first.instrument) or (
            first.set_id, first.sample_id, first.instrument) != (
            second.set_id, second.sample_id, second.instrument):
        raise AbxFormatError(f"{where}the three clips come from different sets/samples/instruments: "
                             f"{reference.path}, {first.path}, {second.path}")
    pair = {first.letter, second.letter}
    if pair == {"A", "B"}:
        if len({reference.track, first.track, second.track}) != 3:
            raise AbxFormatError(f"{where}All-Diff triplet with a repeated track: "
                                 f"{reference.path}, {first.path}, {second.path}")
        return ALL_DIFF
    if pair == {"Y", "C"}:
        shared, other = (first, second) if first.letter == "Y" else (second, first)
        if shared.track != reference.track or other.track == reference.track:
            raise AbxFormatError(f"{where}One-Shared triplet where Y is not from X's track or C is: "
                                 f"{reference.path}, {first.path}, {second.path}")
        return ONE_SHARED
    raise AbxFormatError(f"{where}samples {first.letter} and {second.letter} are neither A/B "
                         f"(All-Diff) nor Y/C (One-Shared)")


def _answer(value: str, column: str, where: str, optional: bool) -> str | None:
    value = value.strip()
    if value in ANSWER_VALUES:
        return value
    if optional and value in NOT_ANSWERED:
        return None
    allowed = ", ".join(ANSWER_VALUES + (NOT_ANSWERED if optional else ()))
    raise AbxFormatError(f"{where}{column} = {value!r} is not one of {allowed}")


def _flip(answer: str | None) -> str | None:
    """The same answer with A and B exchanged (screen order <-> canonical order)."""
    if answer is None:
        return None
    return {"A": "B", "B": "A"}[answer[0]] + answer[1:]


@dataclass
class _RawTriplet:
    refs: dict[str, _ClipRef]
    responses: list[AbxResponse]
    experiments: dict[str, str]  # experiment -> "file:line" of its first row, for errors


@dataclass
class _Answers:
    """What the answers CSV holds, grouped by triplet, and what the checks for lost rows need."""

    triplets: dict[tuple, _RawTriplet]
    attention_checks: int
    failed: set[str]
    # Per answer row, in file order: ((experiment, subject, set), (sample, instrument, condition)).
    rows: list[tuple[tuple[str, str, int], tuple[int, str, str]]]
    last_line: int
    index_warning: str | None


def _is_attention_check(row: dict[str, str]) -> bool:
    return any(_ATTENTION_CHECK.match(row[column].strip())
               for column in ("reference", "sample_a", "sample_b"))


def _passed_attention_check(row: dict[str, str]) -> bool:
    chosen = row["sample_a"] if row["answer_total"].strip().startswith("A") else row["sample_b"]
    return chosen.strip() == row["reference"].strip()


def _read_answers(csv_path: Path) -> _Answers:
    """Group the answer rows by triplet, with what :func:`_lost_row_warnings` checks."""
    if not csv_path.is_file():
        raise AbxFormatError(f"{csv_path}: answers file not found")
    try:
        stream = csv_path.open(newline="", encoding="utf-8")
    except OSError as err:
        raise AbxFormatError(f"{csv_path}: cannot read: {err.strerror or err}") from None
    with stream:
        reader = csv.DictReader(stream)
        try:
            answers = _parse_rows(csv_path, reader)
        except UnicodeDecodeError as err:
            raise AbxFormatError(f"{csv_path}: not UTF-8 text after line {reader.line_num} ({err.reason})"
                                 ) from None
        except csv.Error as err:
            raise AbxFormatError(f"{csv_path}:{reader.line_num + 1}: not a readable CSV row: {err}") from None
    if not answers.rows and not answers.attention_checks:
        raise AbxFormatError(f"{csv_path}: no answers below the header")
    return answers


def _parse_rows(csv_path: Path, reader: csv.DictReader) -> _Answers:
    triplets: dict[tuple, _RawTriplet] = {}
    attention_checks = 0
    failed: set[str] = set()
    rows: list[tuple[tuple[str, str, int], tuple[int, str, str]]] = []
    index_warning = None
    missing = [column for column in CSV_COLUMNS if column not in (reader.fieldnames or [])]
    if missing:
        raise AbxFormatError(f"{csv_path}:1: missing column(s) {', '.join(missing)} "
                             f"(header: {', '.join(reader.fieldnames or [])})")
    has_index = (reader.fieldnames or [None])[0] == ""
    for number, row in enumerate(reader):
        where = f"{csv_path}:{reader.line_num}: "
        if has_index and index_warning is None and row[""] != str(number):
            index_warning = (f"{where}row index {row['']!r} where {number} was expected: rows are "
                             "missing or out of order")
        if any(row[column] is None for column in CSV_COLUMNS):
            raise AbxFormatError(f"{where}row has fewer fields than the header")
        experiment, subject = row["ex_name"].strip(), row["subject_id"].strip()
        if not _EXPERIMENT.match(experiment):
            raise AbxFormatError(f"{where}ex_name {experiment!r} is not of the form ex<tag>")
        total = _answer(row["answer_total"], "answer_total", where, optional=False)
        if _is_attention_check(row):
            attention_checks += 1
            if not _passed_attention_check(row):
                failed.add(f"{experiment}/{subject}")
            continue
        reference, first, second = (parse_clip_path(row[column].strip(), where)
                                    for column in ("reference", "sample_a", "sample_b"))
        condition = _condition(reference, first, second, where)
        criteria = {name: _answer(row[f"answer_{name}"], f"answer_{name}", where, optional=True)
                    for name in CRITERIA}
        try:
            choice_time = int(row["choice_time"].strip())
        except ValueError:
            raise AbxFormatError(f"{where}choice_time {row['choice_time']!r} is not an integer "
                                 "(milliseconds)") from None
        swapped = first.letter != PAIR_LETTERS[condition][0]
        fix = _flip if swapped else (lambda answer: answer)
        response = AbxResponse(experiment, subject, fix(total), fix(criteria["timbre"]),
                               fix(criteria["rhythm"]), fix(criteria["melody"]), choice_time, swapped)
        key = (reference.set_id, reference.sample_id, reference.instrument, condition)
        refs = {clip.letter: clip for clip in (reference, first, second)}
        raw = triplets.get(key)
        if raw is None:
            raw = triplets[key] = _RawTriplet(refs, [], {})
        elif raw.refs != refs:
            raise AbxFormatError(f"{where}triplet set{key[0]}/{key[1]}/{key[2]} ({condition}) names "
                                 f"other clips than before: {sorted(c.path for c in refs.values())} vs "
                                 f"{sorted(c.path for c in raw.refs.values())}")
        raw.responses.append(response)
        raw.experiments.setdefault(experiment, where)
        rows.append(((experiment, subject, reference.set_id),
                     (reference.sample_id, reference.instrument, condition)))
    return _Answers(triplets, attention_checks, failed, rows, reader.line_num, index_warning)


def _load_json(path: Path) -> dict:
    if not path.is_file():
        raise AbxFormatError(f"{path}: clip dictionary not found (needed by the answers' ex_name)")
    try:
        with path.open(encoding="utf-8") as stream:
            content = json.load(stream)
    except json.JSONDecodeError as err:
        raise AbxFormatError(f"{path}:{err.lineno}: not valid JSON: {err.msg}") from err
    except UnicodeDecodeError as err:
        raise AbxFormatError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise AbxFormatError(f"{path}: cannot read: {err.strerror or err}") from None
    if not isinstance(content, dict):
        raise AbxFormatError(f"{path}: expected an object of sets (set -> sample -> test -> instrument -> "
                             f"letter), got {type(content).__name__}")
    return content


def _resolve(ref: _ClipRef, letters: Sequence[str], clip_dict: dict, json_path: Path, where: str) -> AbxClip:
    """Find ``ref`` in the JSON test that holds all of ``letters`` and check it names the same clip."""
    context = f"{json_path}: set {ref.set_id} -> sample {ref.sample_id}"
    try:
        tests = clip_dict[str(ref.set_id)][str(ref.sample_id)]
    except (KeyError, TypeError):
        raise AbxFormatError(f"{where}{ref.path}: {context} is missing") from None
    if not isinstance(tests, dict):
        raise AbxFormatError(f"{where}{ref.path}: {context} is not an object of tests "
                             f"(got {type(tests).__name__})")
    candidates = [test.get(ref.instrument) for test in tests.values() if isinstance(test, dict)]
    entries = [entry for entry in candidates if isinstance(entry, dict) and all(
        letter in entry for letter in letters)]
    if len(entries) != 1:
        raise AbxFormatError(f"{where}{ref.path}: {context} has {len(entries)} tests with "
                             f"{ref.instrument} clips {'/'.join(letters)} (expected exactly one)")
    entry = entries[0][ref.letter]
    try:
        filename, track, segment = entry["filename"], int(entry["ID"]), int(entry["seg"])
        start, end, sample_rate = int(entry["index_s"]), int(entry["index_e"]), int(entry["sr"])
    except (KeyError, TypeError, ValueError) as err:
        raise AbxFormatError(f"{context} -> {ref.instrument} -> {ref.letter}: bad or missing field "
                             f"{err}") from None
    if (filename, track, segment) != (Path(ref.path).name, ref.track, ref.segment):
        raise AbxFormatError(f"{where}{ref.path} does not match {context} -> {ref.instrument} -> "
                             f"{ref.letter} (filename {filename}, ID {track}, seg {segment})")
    if not 0 <= start < end:
        raise AbxFormatError(f"{context} -> {ref.instrument} -> {ref.letter}: "
                             f"index_s {start} / index_e {end} is not a valid range")
    return AbxClip(track, start, end, ref.path, segment, sample_rate)


def read_abx_set(abx_dir: str | Path, drop_failed_subjects: bool = False) -> AbxSet:
    """Read ``inst_sim_abx_answers.csv`` and its clip dictionaries from ``abx_dir`` into triplets.

    Attention checks are dropped; so are all answers of subjects who missed one when
    ``drop_failed_subjects`` (the paper's counts keep them). Triplets come sorted by set, sample,
    instrument and condition.
    """
    root = Path(abx_dir)
    csv_path = root / ANSWERS_CSV
    answers = _read_answers(csv_path)
    failed = answers.failed
    dicts: dict[str, tuple[Path, dict]] = {}
    triplets = []
    for key, raw in answers.triplets.items():
        set_id, sample_id, instrument, condition = key
        letters = ("X", *PAIR_LETTERS[condition])
        clips: dict[str, AbxClip] = {}
        for experiment, where in raw.experiments.items():
            if experiment not in dicts:
                json_path = root / json_name(experiment)
                dicts[experiment] = (json_path, _load_json(json_path))
            json_path, clip_dict = dicts[experiment]
            for letter in letters:
                clip = _resolve(raw.refs[letter], letters, clip_dict, json_path, where)
                if clips.setdefault(letter, clip) != clip:
                    raise AbxFormatError(f"{json_path}: {clip.path} has other sample positions than in "
                                         f"another experiment's dictionary ({clip} vs {clips[letter]})")
        responses = tuple(r for r in raw.responses
                          if not (drop_failed_subjects and f"{r.experiment}/{r.subject_id}" in failed))
        if responses:
            triplets.append(AbxTriplet(set_id, sample_id, instrument, condition, clips["X"],
                                       clips[letters[1]], clips[letters[2]], responses))
    triplets.sort(key=_sort_key)
    warnings = _lost_row_warnings(csv_path, answers, dicts)
    for warning in warnings:
        logger.warning("%s", warning)
    return AbxSet(root, tuple(triplets), answers.attention_checks, tuple(sorted(failed)), tuple(warnings))


def _set_triplets(clip_dict: dict, set_id: int) -> set[tuple[int, str, str]]:
    """(sample, instrument, condition) of every triplet a clip dictionary holds for ``set_id``; parts
    that are not shaped as the format says are left out (reading the answers checks what they use)."""
    found = set()
    samples = clip_dict.get(str(set_id))
    for sample, tests in (samples.items() if isinstance(samples, dict) else ()):
        for test in (tests.values() if isinstance(tests, dict) else ()):
            for instrument, clips in (test.items() if isinstance(test, dict) else ()):
                letters = set(clips) if isinstance(clips, dict) else set()
                for condition, pair in PAIR_LETTERS.items():
                    if letters == {"X", *pair} and sample.isdigit():
                        found.add((int(sample), instrument, condition))
    return found


def _lost_row_warnings(csv_path: Path, answers: _Answers, dicts: dict[str, tuple[Path, dict]]) -> list[str]:
    """Traces of rows lost from the answers (see the module docstring), as messages naming the files."""
    warnings = [answers.index_warning] if answers.index_warning else []
    answered: dict[tuple[str, int], set] = defaultdict(set)   # (experiment, set) -> triplets answered
    by_session: dict[tuple[str, str, int], set] = defaultdict(set)
    for session, triplet in answers.rows:
        answered[session[0], session[2]].add(triplet)
        by_session[session].add(triplet)
    expected = {(experiment, set_id): _set_triplets(dicts[experiment][1], set_id)
                for experiment, set_id in answered}
    for (experiment, set_id), got in sorted(answered.items()):
        missing = sorted(expected[experiment, set_id] - got)
        if missing:
            shown = ", ".join(f"set{set_id}/{sample}/{instrument}/{condition}"
                              for sample, instrument, condition in missing[:5])
            warnings.append(f"{csv_path}: {len(missing)} triplet(s) that {dicts[experiment][0].name} holds "
                            f"for set {set_id}, which {experiment} answered, have no answer ({shown}"
                            f"{', ...' if len(missing) > 5 else ''}): rows are missing (a file cut short?)")
    if not answers.rows:
        return warnings
    last = answers.rows[-1][0]
    trailing = next((i for i, (session, _) in enumerate(reversed(answers.rows)) if session != last),
                    len(answers.rows))
    in_order = trailing == sum(session == last for session, _ in answers.rows)
    experiment, _, set_id = last
    sessions = [key for key in by_session if key[0] == experiment]
    complete = sum(by_session[key] >= expected[experiment, key[2]] for key in sessions)
    size = len(expected[experiment, set_id])
    if in_order and len(by_session[last]) < size and complete > len(sessions) / 2:
        warnings.append(f"{csv_path}:{answers.last_line}: the file ends inside a session: {experiment} "
                        f"{last[1]} answered {len(by_session[last])} of the {size} triplets of set {set_id}, "
                        f"while {complete} of {len(sessions)} {experiment} sessions answered all of their "
                        "set: the file may be cut short")
    return warnings


def _instrument_rank(instrument: str) -> tuple[int, str]:
    order = INSTRUMENT_ORDER.index(instrument) if instrument in INSTRUMENT_ORDER else len(INSTRUMENT_ORDER)
    return order, instrument


def _sort_key(triplet: AbxTriplet) -> tuple:
    return (triplet.set_id, triplet.sample_id, _instrument_rank(triplet.instrument),
            CONDITIONS.index(triplet.condition))


def instruments_of(triplets: Iterable[AbxTriplet]) -> list[str]:
    """The instruments present, in the paper's order (drums, bass, piano, guitar, residuals, mix, ...)."""
    return sorted({t.instrument for t in triplets}, key=_instrument_rank)


def confident(triplets: Iterable[AbxTriplet], threshold: float = AGREEMENT_THRESHOLD) -> list[AbxTriplet]:
    """The triplets whose majority share is strictly above ``threshold`` (the evaluation set)."""
    return [triplet for triplet in triplets if triplet.is_confident(threshold)]


def agreement_table(triplets: Iterable[AbxTriplet], threshold: float = AGREEMENT_THRESHOLD,
                    ) -> dict[tuple[str, str], AbxTableCell]:
    """Table 1 of the paper: per (instrument, condition) the triplets and responses, all and confident."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for triplet in triplets:
        cell = counts[(triplet.instrument, triplet.condition)]
        cell[0] += 1
        cell[1] += triplet.num_responses
        if triplet.is_confident(threshold):
            cell[2] += 1
            cell[3] += triplet.num_responses
    order = sorted(counts, key=lambda key: (_instrument_rank(key[0]), CONDITIONS.index(key[1])))
    return {key: AbxTableCell(*counts[key]) for key in order}


def split_train_test(triplets: Iterable[AbxTriplet], train_fraction: float = 0.7, seed: int = 0,
                     ) -> tuple[list[AbxTriplet], list[AbxTriplet]]:
    """PAFT's 7:3 split, stratified per (instrument, condition) and reproducible from ``seed``.

    Each stratum is ordered by key and permuted with a generator seeded by ``seed`` and the stratum's
    name, so the split of one stratum depends neither on the input order nor on the other strata.
    """
    if not 0.0 <= train_fraction <= 1.0:
        raise ValueError(f"train_fraction must lie in [0, 1], got {train_fraction}")
    strata: dict[tuple[str, str], list[AbxTriplet]] = defaultdict(list)
    for triplet in triplets:
        strata[(triplet.instrument, triplet.condition)].append(triplet)
    train: list[AbxTriplet] = []
    test: list[AbxTriplet] = []
    for (instrument, condition), members in sorted(strata.items()):
        members.sort(key=lambda t: t.key)
        rng = np.random.default_rng([seed, zlib.crc32(f"{instrument}/{condition}".encode())])
        order = rng.permutation(len(members))
        num_train = round(train_fraction * len(members))
        train.extend(members[i] for i in sorted(order[:num_train]))
        test.extend(members[i] for i in sorted(order[num_train:]))
    return train, test


def _screen_row(triplet: AbxTriplet, response: AbxResponse) -> list[str]:
    """One CSV row as the subject saw it (undoing the canonical a/b order of a swapped response)."""
    first, second = (triplet.b, triplet.a) if response.swapped else (triplet.a, triplet.b)
    fix = _flip if response.swapped else (lambda answer: answer)
    criteria = [fix(getattr(response, name)) or NOT_ANSWERED[0] for name in CRITERIA]
    return [response.experiment, response.subject_id, triplet.x.path, first.path, second.path, *criteria,
            fix(response.total), str(response.choice_time_ms)]


def _check_writable(triplet: AbxTriplet) -> None:
    """Refuse triplets that the reader would reject or silently lose."""
    if not triplet.responses:
        raise ValueError(f"ABX triplet {triplet.key} has no responses: it could not be read back")
    expected = ("X", *PAIR_LETTERS[triplet.condition])
    for clip, letter in zip((triplet.x, triplet.a, triplet.b), expected, strict=True):
        ref = parse_clip_path(clip.path, f"triplet {triplet.key}: ")
        if (ref.set_id, ref.sample_id, ref.instrument, ref.letter, ref.track, ref.segment) != (
                triplet.set_id, triplet.sample_id, triplet.instrument, letter, clip.track, clip.segment):
            raise ValueError(f"ABX triplet {triplet.key}: clip path {clip.path} disagrees with the "
                             f"triplet (expected letter {letter}, track {clip.track}, seg {clip.segment})")
    for response in triplet.responses:
        json_name(response.experiment)
        _answer(response.total, "answer_total", f"triplet {triplet.key}: ", optional=False)


def write_abx_set(out_dir: str | Path, triplets: Iterable[AbxTriplet]) -> Path:
    """Write triplets and their responses in the Inst-Sim-ABX format that :func:`read_abx_set` reads.

    Produces ``inst_sim_abx_answers.csv`` (responses in the given order, with the pandas-style index
    column of the original) and one ``dict_triplet_<tag>.json`` per experiment named in the responses,
    holding the clips that experiment used, with One-Shared under "test1" and All-Diff under "test2"
    as in the real files. Returns ``out_dir``.
    """
    out = Path(out_dir)
    triplets = list(triplets)
    seen: set[str] = set()
    dicts: dict[str, dict] = {}
    rows: list[list[str]] = []
    for triplet in triplets:
        if triplet.key in seen:
            raise ValueError(f"ABX triplet {triplet.key} is given twice")
        seen.add(triplet.key)
        _check_writable(triplet)
        for response in triplet.responses:
            rows.append(_screen_row(triplet, response))
            tests = dicts.setdefault(response.experiment, {}).setdefault(
                str(triplet.set_id), {}).setdefault(str(triplet.sample_id), {})
            instruments = tests.setdefault(JSON_TEST_NAME[triplet.condition], {})
            instruments[triplet.instrument] = {
                clip.letter: {"ID": clip.track, "seg": clip.segment, "filename": Path(clip.path).name,
                              "sr": clip.sample_rate, "index_s": clip.start, "index_e": clip.end}
                for clip in (triplet.x, triplet.a, triplet.b)}
    out.mkdir(parents=True, exist_ok=True)
    with (out / ANSWERS_CSV).open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(["", *CSV_COLUMNS])
        for index, row in enumerate(rows):
            writer.writerow([str(index), *row])
    for experiment, clip_dict in dicts.items():
        with (out / json_name(experiment)).open("w", encoding="utf-8") as stream:
            json.dump(clip_dict, stream, indent=4)
            stream.write("\n")
    return out


_TRAILING_NUMBER = re.compile(r"(\d+)$")


def track_index_by_number(track_ids: Sequence[str]) -> dict[int, int]:
    """``{17: i}`` for dump track ``i`` named ``Track00017``: the ABX set names a track by its number
    (the JSON's ``ID``), a dump by an id ending in it."""
    index = {}
    for i, track_id in enumerate(track_ids):
        match = _TRAILING_NUMBER.search(track_id)
        if match:
            index[int(match.group(1))] = i
    return index


def clip_origin(clip: AbxClip, track_index: dict[int, int], sample_rate: int, where: str = ""
                ) -> tuple[int, int]:
    """(dump track index, start) of an ABX clip; :class:`AbxClipError` naming the clip if the dump
    (its ``track_index`` and ``sample_rate``) cannot supply it."""
    if clip.sample_rate != sample_rate:
        raise AbxClipError(f"{where}ABX clip {clip.path} is at {clip.sample_rate} Hz, "
                           f"the dump at {sample_rate}")
    if clip.track not in track_index:
        raise AbxClipError(f"{where}ABX clip {clip.path}: track {clip.track} is not in the test dump")
    return track_index[clip.track], clip.start
