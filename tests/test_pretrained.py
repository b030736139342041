"""Models that stand alone: what final.pt records, packed files, loading without code, refusals."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from search_fixtures import MODEL, SOURCES, SR

from inmsrl.bin.main import main
from inmsrl.environment import git_revision
from inmsrl.models.config import build_model
from inmsrl.models.pretrained import ModelFileError, load_pretrained, pack, standalone_metadata
from inmsrl.search.embedder import Embedder
from inmsrl.tasks.common import load_trained
from inmsrl.version import __version__


def test_a_finished_training_records_what_the_model_needs_to_stand_alone(search_corpus):
    _, exp = search_corpus
    stored = torch.load(exp / "final.pt", weights_only=True)
    meta = stored["standalone"]
    assert meta["sources"] == list(SOURCES)
    assert (meta["sample_rate"], meta["n_fft"], meta["hop_length"]) == (SR, 256, 128)
    assert meta["inmsrl_version"] == __version__ and meta["git_revision"] == git_revision()
    training = load_pretrained(exp).card.training
    assert training == {"epoch": stored["epoch"], "valid_loss": stored["valid_loss"]}
    # Loaded from the checkpoint alone, it is the model the training tasks load with the dump's sources.
    alone = load_pretrained(exp).model
    with_dump = load_trained(exp, SOURCES).eval()
    audio = torch.randn(2, SR)
    with torch.no_grad():
        assert torch.equal(alone.embed(audio), with_dump.embed(audio))


def test_a_packed_model_loads_and_embeds_without_the_training_data(search_corpus, tmp_path, capsys):
    _, exp = search_corpus
    assert main(["pack", str(exp), "-o", str(tmp_path / "model.pt")]) == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(tmp_path / "model.pt", elsewhere / "cascade.inmsrl")
    audio = np.random.default_rng(0).standard_normal(3 * SR).astype(np.float32) * 0.1
    np.save(tmp_path / "audio.npy", audio)
    # A fresh interpreter that sees only the packed file (no dump, no experiment directory).
    script = (f"import numpy as np; from inmsrl.search import Embedder; "
              f"e = Embedder.from_pretrained('cascade.inmsrl', device='cpu', window=1.0, hop=1.0); "
              f"np.save('out.npy', e.embed_array(np.load({str(tmp_path / 'audio.npy')!r}), {SR}).vectors)")
    subprocess.run([sys.executable, "-c", script], cwd=elsewhere, check=True)
    here = Embedder.from_pretrained(exp, device="cpu", window=1.0, hop=1.0).embed_array(audio, SR)
    np.testing.assert_allclose(np.load(elsewhere / "out.npy"), here.vectors, rtol=1e-5, atol=1e-6)

    capsys.readouterr()
    assert main(["info", str(elsewhere / "cascade.inmsrl"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["sources"] == list(SOURCES) and info["embeds"] == list(SOURCES)
    assert info["sample_rate"] == SR and info["input"] == "mixture" and info["separates"] is True
    assert info["model_config"]["type"] == "cascade" and info["inmsrl_version"] == __version__


def test_pack_takes_the_models_scores_from_the_recipes_results(search_corpus, tmp_path, capsys):
    _, exp = search_corpus
    recipe = tmp_path / "recipe"
    shutil.copytree(exp, recipe / "exp" / "cascade_ft")
    (recipe / "RESULTS.json").write_text(json.dumps({
        "environment": {"git": "x"}, "mes_normal": {"cascade_ft": {"piano": {"accuracy": 0.4}},
                                                    "clean": {"piano": {"accuracy": 0.9}}},
        "sdr": {"cascade_ft": {"piano": 1.3}}, "abx": {"models": {"cascade_ft": {"All-Diff": {}}}}}))
    assert main(["pack", str(recipe / "exp" / "cascade_ft"), "-o", str(tmp_path / "m.pt")]) == 0
    scores = load_pretrained(tmp_path / "m.pt").card.scores
    assert scores == {"mes_normal": {"piano": {"accuracy": 0.4}}, "sdr": {"piano": 1.3},
                      "abx": {"All-Diff": {}}}
    capsys.readouterr()
    assert main(["info", str(tmp_path / "m.pt")]) == 0
    out = capsys.readouterr().out
    assert "cascade_ft" in out and "mes_normal" in out and "drums bass piano guitar" in out


class _RunsCode:
    """Unpickling this calls Path.touch: what a malicious model file would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (type(self.marker).touch, (self.marker,))


def test_a_model_file_with_pickled_code_is_refused_without_running_it(tmp_path, capsys):
    marker = tmp_path / "code-ran"
    model = build_model(MODEL, SOURCES)
    torch.save({"model": model.state_dict(), "config": {"model": MODEL}, "payload": _RunsCode(marker)},
               tmp_path / "evil.pt")
    with pytest.raises(ModelFileError, match="refused"):
        load_pretrained(tmp_path / "evil.pt")
    assert main(["info", str(tmp_path / "evil.pt")]) == 1
    assert "refused" in capsys.readouterr().err
    assert not marker.exists(), "loading the file ran its code"


def test_a_clean_model_is_refused_for_mixtures_with_a_clear_message(tmp_path):
    config = {**MODEL, "type": "clean"}
    clean = build_model(config, SOURCES)
    torch.save({"model": clean.state_dict(), "config": {"model": config},
                "standalone": standalone_metadata(clean, config)}, tmp_path / "final.pt")
    assert load_pretrained(tmp_path).card.sources == SOURCES  # it loads ...
    with pytest.raises(ModelFileError, match="clean stems"):  # ... but cannot embed an audio file
        Embedder.from_pretrained(tmp_path)


def test_a_checkpoint_without_recorded_sources_asks_for_them(tmp_path, capsys):
    model = build_model(MODEL, SOURCES)
    torch.save({"model": model.state_dict(), "config": {"model": MODEL}}, tmp_path / "final.pt")
    with pytest.raises(ModelFileError, match="--sources"):
        load_pretrained(tmp_path)
    assert main(["pack", str(tmp_path), "-o", str(tmp_path / "p.pt")]) == 1
    assert "--sources" in capsys.readouterr().err
    assert main(["pack", str(tmp_path), "-o", str(tmp_path / "p.pt"), "--sources", *SOURCES]) == 0
    assert load_pretrained(tmp_path / "p.pt").card.sources == SOURCES


def test_weights_that_do_not_fit_the_config_are_an_error_naming_the_file(tmp_path):
    model = build_model(MODEL, SOURCES)
    torch.save({"model": model.state_dict(), "config": {"model": MODEL},
                "standalone": standalone_metadata(model, MODEL)}, tmp_path / "final.pt")
    packed = pack(load_pretrained(tmp_path))
    packed["card"]["model_config"]["embedding_dim"] = 8
    torch.save(packed, tmp_path / "bad.pt")
    with pytest.raises(ModelFileError, match="bad.pt.*do not fit"):
        load_pretrained(tmp_path / "bad.pt")


@pytest.mark.parametrize(("kind", "separates"), [("cascade", True), ("clean", False), ("direct", False),
                                                 ("direct_reconst", True)])
def test_whether_a_model_separates_is_a_property_of_the_model(kind, separates):
    config = {"type": kind, "embedding_dim": 4, "stft": {"n_fft": 256, "hop_length": 128}}
    config["unet"] = {"channels": [2, 4, 16]} if kind.startswith("direct") else {"channels": [2, 4]}
    if not kind.startswith("direct"):
        config["mel_bands"] = 16
    assert build_model(config, SOURCES).separates is separates
