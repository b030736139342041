"""A micro stage 8: ``inmsrl embed`` (two jobs), ``sdr``, ``score`` and ``report`` on a tiny dump with
tiny (untrained) Clean and Cascade models and a hand-made ABX set; RESULTS.md and its JSON agree."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
import torch
import yaml

from inmsrl.audio.io import write_audio
from inmsrl.bin.main import main
from inmsrl.data.abx import ALL_DIFF, ONE_SHARED, AbxClip, AbxResponse, AbxTriplet, write_abx_set
from inmsrl.data.datadir import DataDir, TrackRecord
from inmsrl.data.dump import dump_data_dir
from inmsrl.models.config import build_model

SOURCES = ["drums", "bass"]
RATE = 44100
TINY = {"unet": {"channels": [2, 4, 4, 8, 8, 8]}, "mel_bands": 32}


def make_data_dir(root, num_tracks=5, seconds=7, sources=SOURCES):
    """A data directory at ``root`` of noise tracks (the second source silent for its first 0.5 s),
    audio beside it."""
    rng = np.random.default_rng(0)
    records = []
    for t in range(1, num_tracks + 1):
        track = f"Track{t:05d}"
        gains = np.linspace(0.2, 1, len(sources))[:, None]
        stems = 0.1 * rng.standard_normal((len(sources), seconds * RATE)) * gains
        stems[1, : RATE // 2] = 0.0
        paths = {name: root.parent / "audio" / f"{track}_{name}.wav" for name in sources}
        for name, stem in zip(sources, stems, strict=True):
            write_audio(paths[name], stem, RATE)
        mix = root.parent / "audio" / f"{track}_mix.wav"
        write_audio(mix, stems.sum(0), RATE)
        records.append(TrackRecord(track, mix, paths, float(seconds)))
    DataDir.from_tracks(sources, records).write(root)


def save_experiment(exp, model_type, label=None, family=None):
    """A finished experiment of an untrained ``model_type`` model that describes itself."""
    config = {"type": model_type, "target_sources": SOURCES, **TINY}
    torch.manual_seed(0)
    model = build_model(config, SOURCES)
    exp.mkdir(parents=True)
    torch.save({"model": model.state_dict(), "config": {"model": config}, "epoch": 1}, exp / "final.pt")
    description = {"family": family or model_type, "label": label or model_type.capitalize(),
                   "separates": model_type == "cascade"}
    (exp / "config.yaml").write_text(yaml.safe_dump({"experiment": description, "seed": 0, "model": config}))
    (exp / "done").write_text("{}\n")


def abx_set(out):
    length = RATE  # 1 s clips
    triplets = []
    for sample, (instrument, condition, tracks, votes_a) in enumerate([
            ("drums", ALL_DIFF, (1, 2, 3), 5), ("bass", ONE_SHARED, (4, 4, 5), 0),
            ("drums", ONE_SHARED, (2, 2, 1), 5)]):
        letters = ("X", "A", "B") if condition == ALL_DIFF else ("X", "Y", "C")
        segments = (1, 3, 2)
        clips = [AbxClip(t, seg * length, (seg + 1) * length,
                         f"set0/{sample}/{instrument}/{letter}_{t}-{seg}.wav", seg)
                 for t, letter, seg in zip(tracks, letters, segments, strict=True)]
        responses = tuple(AbxResponse("exsynth1", f"s{i}", "A+" if i < votes_a else "B+") for i in range(5))
        triplets.append(AbxTriplet(0, sample, instrument, condition, *clips, responses))
    write_abx_set(out, triplets)


@pytest.mark.timeout(300)
def test_stage8_commands_write_scores_report_and_figure(tmp_path, capsys):
    make_data_dir(tmp_path / "data")
    dump = tmp_path / "dump"
    dump_data_dir(tmp_path / "data", dump)
    save_experiment(tmp_path / "exp" / "clean", "clean")
    save_experiment(tmp_path / "exp" / "cascade", "cascade")
    abx_set(tmp_path / "abx")
    scores = tmp_path / "scores"
    sets = ["--segment-seconds", "2", "--pseudo-targets", "2", "--pseudo-others", "2", "--vis-pieces", "3",
            "--vis-segments", "2", "--vis-per-pair", "2", "--abx-dir", str(tmp_path / "abx"),
            "--device", "cpu"]
    for name in ("clean", "cascade"):
        for job in ("1", "2"):
            assert main(["embed", "--dump", str(dump), "--exp-dir", str(tmp_path / "exp" / name),
                         "--out", str(scores / "embeddings" / name), "--part", job, "--num-parts", "2",
                         *sets]) == 0
    assert main(["embed", "--dump", str(dump), "--baseline", "mfcc-clean", "--sources", *SOURCES,
                 "--out", str(scores / "embeddings" / "mfcc_clean"), *sets]) == 0
    capsys.readouterr()
    # A re-run with the same model and options keeps what is there.
    assert main(["embed", "--dump", str(dump), "--exp-dir", str(tmp_path / "exp" / "clean"),
                 "--out", str(scores / "embeddings" / "clean"), "--part", "1", "--num-parts", "2",
                 *sets]) == 0
    assert capsys.readouterr().out.count("up to date") == 5  # normal, pseudo, vis, abx, swap
    assert main(["sdr", "--dump", str(dump), "--mixture", "--sources", *SOURCES, "--out", str(scores / "sdr"),
                 "--device", "cpu"]) == 0
    assert main(["sdr", "--dump", str(dump), "--exp-dir", str(tmp_path / "exp" / "cascade"),
                 "--out", str(scores / "sdr"), "--device", "cpu"]) == 0
    capsys.readouterr()
    sdr_again = ["sdr", "--dump", str(dump), "--exp-dir", str(tmp_path / "exp" / "cascade"),
                 "--out", str(scores / "sdr"), "--device", "cpu"]
    assert main(sdr_again) == 0 and "up to date, kept" in capsys.readouterr().out
    final = tmp_path / "exp" / "cascade" / "final.pt"
    os.utime(final, ns=(final.stat().st_atime_ns, final.stat().st_mtime_ns + 10**9))  # a retrained model
    assert main(sdr_again) == 0 and "up to date" not in capsys.readouterr().out
    assert main(["score", "--scores-dir", str(scores), "--abx-dir", str(tmp_path / "abx")]) == 0
    result = json.loads((scores / "scores.json").read_text())
    assert set(result["models"]) == {"clean", "cascade", "mfcc_clean"}
    assert set(result["mes_normal"]["clean"]) == set(SOURCES)
    assert result["abx"]["split"] == "all"
    cell = result["abx"]["models"]["clean"][ALL_DIFF]["drums"]
    responses = result["abx"]["counts"][f"drums/{ALL_DIFF}"]["confident_responses"]
    assert cell["total"] == responses > 1 and cell["triplets"]["total"] == 1  # responses, as the paper
    assert result["sdr"]["mixture"].keys() == result["sdr"]["cascade"].keys() == set(SOURCES)
    out = tmp_path / "RESULTS.md"
    assert main(["report", "--scores-dir", str(scores), "--out", str(out), "--mean-sources", *SOURCES]) == 0
    text = out.read_text()
    for heading in ("Table 1", "Table 2: MES-Normal", "Table 3: MES-Pseudo", "Table 4", "Table 5",
                    "Table 6", "Swap test", "## Environment", "RESULTS_tsne.png"):
        assert heading in text, heading
    assert (tmp_path / "RESULTS_tsne.png").stat().st_size > 1000
    report = json.loads((tmp_path / "RESULTS.json").read_text())
    assert report["environment"]["git"] and report["mes_normal"] == result["mes_normal"]
    row = next(line for line in text.splitlines() if line.startswith("| Cascade |")
               and "[" not in line and line.count("|") == len(SOURCES) + 2)
    expected = [f"{100 * result['mes_normal']['cascade'][s]['accuracy']:.2f}" for s in SOURCES]
    assert re.findall(r"\d+\.\d\d", row) == expected
    sdr_row = next(line for line in text.splitlines() if line.startswith("| Mixture (unprocessed) |"))
    assert f"{result['sdr']['mixture']['drums']:.2f}" in sdr_row


@pytest.mark.timeout(300)
def test_stage8_tools_take_the_instruments_from_the_dump_and_the_experiments(tmp_path, capsys):
    # Not Slakh's instruments, in an order that is not alphabetical: no tool may assume either.
    sources = ["vocals", "drums", "other"]
    make_data_dir(tmp_path / "data", num_tracks=3, seconds=3, sources=sources)
    dump = tmp_path / "dump"
    dump_data_dir(tmp_path / "data", dump)
    for name in ("vocals", "other"):  # stage-3 separators of two of the three sources
        config = {"type": "separator", "target_sources": [name], "unet": TINY["unet"]}
        (tmp_path / "mss" / name).mkdir(parents=True)
        torch.save({"model": build_model(config, sources).state_dict(), "config": {"model": config},
                    "epoch": 1}, tmp_path / "mss" / name / "final.pt")
    scores = tmp_path / "scores"
    sets = ["--segment-seconds", "1", "--sets", "normal", "--device", "cpu"]
    assert main(["embed", "--dump", str(dump), "--baseline", "mfcc-clean",
                 "--out", str(scores / "embeddings" / "mfcc_clean"), *sets]) == 0
    assert main(["embed", "--dump", str(dump), "--baseline", "mfcc-cascade", "--separators",
                 str(tmp_path / "mss" / "{source}"), "--out", str(scores / "embeddings" / "mfcc_cascade"),
                 *sets]) == 0
    for what in (["--mixture"], ["--separators", str(tmp_path / "mss" / "{source}")]):
        assert main(["sdr", "--dump", str(dump), *what, "--out", str(scores / "sdr"), "--device", "cpu"]) == 0
    assert main(["score", "--scores-dir", str(scores), "--no-tsne"]) == 0
    result = json.loads((scores / "scores.json").read_text())
    assert list(result["mes_normal"]["mfcc_clean"]) == sources
    assert list(result["mes_normal"]["mfcc_cascade"]) == ["vocals", "other"]
    assert set(result["sdr"]["mixture"]) == set(sources) and set(result["sdr"]["mss"]) == {"vocals", "other"}
    assert result["config"]["sources"] == sources
    out = tmp_path / "RESULTS.md"
    assert main(["report", "--scores-dir", str(scores), "--out", str(out)]) == 0
    assert "| Method | vocals | drums | other |" in out.read_text()  # the data's order
    # Without a finished separator for any source, the tools say so instead of guessing.
    capsys.readouterr()
    assert main(["sdr", "--dump", str(dump), "--separators", str(tmp_path / "none" / "{source}"),
                 "--out", str(scores / "sdr"), "--device", "cpu"]) == 1
    assert "no finished separator at" in capsys.readouterr().err


def test_pseudo_items_run_only_the_target_separator_and_match_the_full_embedding(tmp_path):
    from inmsrl.data.segments import ensure_segment_tables
    from inmsrl.eval.embeddings import embed_items, segment_items
    from inmsrl.eval.testsets import pseudo_test_items

    make_data_dir(tmp_path / "data")
    dump = dump_data_dir(tmp_path / "data", tmp_path / "dump")
    table = ensure_segment_tables(dump, [2.0])[2.0]
    torch.manual_seed(0)
    model = build_model({"type": "cascade", "target_sources": SOURCES, **TINY}, SOURCES).eval()
    calls = {name: 0 for name in SOURCES}
    for name in SOURCES:
        model.separator.separators[name].register_forward_hook(
            lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
    items = pseudo_test_items(table, SOURCES, ["bass"], num_targets=2, others_per_target=2)
    pseudo = embed_items(model, dump, items, batch_size=4)
    assert calls == {"drums": 0, "bass": -(-len(items) // 4)}
    assert np.isnan(pseudo.vectors[:, 0]).all() and not pseudo.active[:, 0].any()
    # The bass vector of a pseudo item is the one the full model gives the same audio as a normal item.
    same_audio = segment_items("normal", table, len(SOURCES))
    same_audio = type(same_audio)("x", items.length, items.origins, np.full(len(items), -1))
    full = embed_items(model, dump, same_audio, batch_size=4)
    np.testing.assert_allclose(pseudo.vectors[:, 1], full.vectors[:, 1], rtol=1e-5, atol=1e-6)
    assert pseudo.active[:, 1].tolist() == full.active[:, 1].tolist()
