"""Every score of recipe stage 8, computed from the stored embedding and SDR files into one JSON.

Layout of a scores directory (``exp/scores``), written by ``inmsrl embed`` / ``inmsrl sdr`` jobs::

    embeddings/<model>/<set>.<J>-of-<N>.npz   set = normal, pseudo, vis, abx, swap (EmbeddingSet parts)
    sdr/<model>.<J>-of-<N>.json               per-track SDR of a share of the tracks
    scores.json, tsne.npz                     what :func:`score_all` writes; the report reads them

Models are named as their experiments and described by them: each experiment's ``config.yaml`` keeps
its ``experiment:`` section (:mod:`inmsrl.train.description`: family, label, base model, PAFT data),
which gives its label, its place in the tables and whether it is a PAFT run. The rows the tools make
themselves are the baselines (``mfcc_clean``, ``mfcc_cascade``) and the unprocessed ``mixture``.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from inmsrl.data.abx import AbxTriplet, agreement_table, confident, read_abx_set, split_train_test
from inmsrl.eval.agreement import majority_agreement, perceptual_agreement
from inmsrl.eval.embeddings import EmbeddingFileError, EmbeddingSet
from inmsrl.eval.mes import K_NEIGHBOURS, mes_normal, mes_pseudo, target_and_non_target
from inmsrl.eval.sdr import median_over_tracks
from inmsrl.eval.swap import swap_shares
from inmsrl.train.description import read_description

BASELINES = ("mfcc_clean", "mfcc_cascade")
MIXTURE = "mixture"
# The rows the tools make themselves; experiments name themselves (their experiment: section).
LABELS = {"mfcc_clean": "MFCC statistics, clean stems",
          "mfcc_cascade": "MFCC statistics, separated (stage-3 MSS)", MIXTURE: "Mixture (unprocessed)"}
# The paper's order of the families; any other family follows them, by name.
FAMILY_ORDER = ("clean", "cascade", "direct")
SCORES_FILE = "scores.json"
TSNE_FILE = "tsne.npz"


def model_label(name: str) -> str:
    """The table name of a row the tools make (a baseline, the mixture); otherwise ``name`` itself."""
    return LABELS.get(name, name)


def model_order(names: Sequence[str], models: Mapping[str, Mapping] | None = None) -> list[str]:
    """The paper's row order: the mixture; each family (Clean, Cascade, Direct, then any other by name)
    with its models before its PAFT runs; the baselines. ``models`` is scores.json's "models" (each
    model's "family" and "paft_of")."""
    models = models or {}

    def key(name: str) -> tuple:
        if name == MIXTURE:
            return (0, 0, "", 0, name)
        if name in BASELINES:
            return (2, BASELINES.index(name), "", 0, name)
        info = models.get(name, {})
        family = info.get("family") or ""
        rank = FAMILY_ORDER.index(family) if family in FAMILY_ORDER else len(FAMILY_ORDER)
        return (1, rank, family, 1 if info.get("paft_of") else 0, name)

    return sorted(names, key=key)


def describe_model(name: str, meta: Mapping[str, str], log=print) -> dict:
    """The "models" entry of scores.json for ``name``: a baseline's, or what the experiment its
    embeddings came from (``meta["exp_dir"]``) says it is."""
    kind = meta.get("kind", "baseline" if name in BASELINES else "learned")
    info = {"label": model_label(name), "group": model_label(name), "family": None, "kind": kind,
            "paft_of": None, "paft_data": None, "seed": None}
    exp_dir = meta.get("exp_dir", "")
    if kind == "baseline" or not exp_dir:
        return info
    description = read_description(exp_dir) if (Path(exp_dir) / "config.yaml").is_file() else None
    if description is None:
        log(f"WARNING: {name}: {exp_dir}/config.yaml has no experiment: section; shown as '{name}', "
            "after the described models")
        return info
    return {**info, "label": description.run_label, "group": description.label, "family": description.family,
            "paft_of": description.base_model if description.is_paft else None,
            "paft_data": description.paft_data, "seed": description.seed}


def _finite(value: float) -> float | None:
    return value if isinstance(value, float) and math.isfinite(value) else (
        None if isinstance(value, float) else value)


def _clean(obj):
    """JSON-safe copy: NaN → null (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return _finite(float(obj))
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def embedded_models(scores_dir: str | Path) -> list[str]:
    """The models that have embeddings in ``scores_dir``, in table order."""
    root = Path(scores_dir) / "embeddings"
    return model_order([p.name for p in root.iterdir() if p.is_dir()]) if root.is_dir() else []


def load_sdr(scores_dir: str | Path, excerpts: dict[str, float] | None = None
             ) -> dict[str, dict[str, dict[str, float]]]:
    """``{model: {track: {source: sdr}}}`` from every complete set of SDR part files; ``excerpts``, if
    given, receives the seconds scored per track of the models scored on excerpts."""
    excerpts = {} if excerpts is None else excerpts
    root = Path(scores_dir) / "sdr"
    parts: dict[str, dict[int, dict[int, Path]]] = {}
    for path in sorted(root.glob("*.json")) if root.is_dir() else []:
        match = re.match(r"^(?P<model>.+)\.(?P<j>\d+)-of-(?P<n>\d+)\.json$", path.name)
        if match:
            parts.setdefault(match["model"], {}).setdefault(int(match["n"]), {})[int(match["j"])] = path
    result = {}
    for model, by_count in parts.items():
        if len(by_count) > 1:
            raise EmbeddingFileError(f"{root}: SDR parts of {model} from runs with {sorted(by_count)} jobs; "
                                     "remove the stale ones")
        (count, files), = by_count.items()
        missing = sorted(set(range(1, count + 1)) - set(files))
        if missing:
            raise EmbeddingFileError(f"{root}: SDR of {model} misses part(s) {missing} of {count}")
        tracks: dict[str, dict[str, float]] = {}
        for j in range(1, count + 1):
            part = json.loads(files[j].read_text())
            tracks.update(part["tracks"])
            if part.get("seconds") is not None:
                excerpts[model] = float(part["seconds"])
        result[model] = {t: {s: (float("nan") if v is None else v) for s, v in scores.items()}
                         for t, scores in tracks.items()}
    return result


def abx_evaluation_set(triplets: Sequence[AbxTriplet], split: str, train_fraction: float, seed: int
                       ) -> list[AbxTriplet]:
    """The confident triplets of ``split``: "all", "test" (PAFT's held-out share) or "train" (the share
    PAFT learns from: a diagnostic of whether PAFT fits its own triplets at all)."""
    if split == "all":
        return confident(triplets)
    if split in ("train", "test"):
        train, test = split_train_test(triplets, train_fraction, seed)
        return confident(train if split == "train" else test)
    raise ValueError(f"ABX split {split!r} is not 'all', 'test' or 'train'")


def _load(root: Path, model: str, name: str) -> EmbeddingSet | None:
    try:
        return EmbeddingSet.load_parts(root / model, name)
    except EmbeddingFileError as err:
        if "no embedding files" in str(err):
            return None
        raise


def _abx_counts(triplets: Sequence[AbxTriplet]) -> dict[str, dict[str, int]]:
    """Triplets evaluated per condition and instrument."""
    evaluated: dict[str, dict[str, int]] = {}
    for t in triplets:
        evaluated.setdefault(t.condition, {}).setdefault(t.instrument, 0)
        evaluated[t.condition][t.instrument] += 1
    return evaluated


def _cells_dict(cells: dict) -> dict:
    return {cond: {inst: cell.as_dict() for inst, cell in by_inst.items()} for cond, by_inst in cells.items()}


def _id_scores(result: dict, table: str, model: str, scores: dict) -> None:
    """Store a model's music-ID scores and the estimator's chance and perfect-model on the items."""
    result[table][model] = {s: v.as_dict() for s, v in scores.items()}
    for s, v in scores.items():
        result["chance"].setdefault(table, {})[s] = v.chance
        result["perfect"].setdefault(table, {})[s] = v.perfect


def score_all(scores_dir: str | Path, models: Sequence[str] | None = None, abx_dir: str | Path | None = None,
              abx_split: str = "auto", abx_train_fraction: float = 0.7, seed: int = 0, k: int = K_NEIGHBOURS,
              tsne: bool = True, log=print) -> dict:
    """Score every model of ``scores_dir`` (or ``models``) on every set it has; write scores.json and
    tsne.npz there and return the scores. ``abx_split`` "auto" scores a PAFT model on the held-out
    share of the ABX triplets ("test") and every other model on all of them ("all"), as the paper
    does; "all", "test" or "train" score every model on that split. In "auto" mode the models PAFT
    started from are also scored on the held-out share (``abx.heldout``), to compare like with like."""
    root = Path(scores_dir)
    emb_root = root / "embeddings"
    loaded = {}
    for model in (models if models is not None else embedded_models(root)):
        normal = _load(emb_root, model, "normal")
        sets = {name: _load(emb_root, model, name) for name in ("pseudo", "vis", "abx", "swap")}
        first = normal or next((s for s in sets.values() if s is not None), None)
        if first is None:
            raise EmbeddingFileError(f"{emb_root / model}: no embeddings of model {model}")
        loaded[model] = (normal, sets, first, describe_model(model, first.meta, log))
    infos = {model: info for model, (*_, info) in loaded.items()}
    models = model_order(list(loaded), infos)
    result: dict = {"config": {"k": k, "seed": seed}, "models": {}, "mes_normal": {}, "mes_pseudo": {},
                    "table6": {}, "swap": {}, "sdr": {}, "abx": {}, "chance": {}, "perfect": {}}
    splits: dict[str, list[AbxTriplet]] = {}
    split_of: dict[str, str] = {}
    if abx_dir is not None:
        abx = read_abx_set(abx_dir)
        if abx_split not in ("auto", "all", "test", "train"):
            raise ValueError(f"ABX split {abx_split!r} is not 'auto', 'all', 'test' or 'train'")
        split_of = {m: (("test" if infos[m]["paft_of"] else "all") if abx_split == "auto" else abx_split)
                    for m in models}
        plain_split = "all" if abx_split == "auto" else abx_split
        needed = {plain_split, *split_of.values()} | ({"test"} if abx_split == "auto" else set())
        splits = {name: abx_evaluation_set(abx.triplets, name, abx_train_fraction, seed) for name in needed}
        result["abx"] = {"dir": str(abx_dir), "split": plain_split, "train_fraction": abx_train_fraction,
                         "counts": {f"{inst}/{cond}": vars(cell) for (inst, cond), cell
                                    in agreement_table(abx.triplets).items()},
                         "evaluated": _abx_counts(splits[plain_split]),
                         "evaluated_by_split": {name: _abx_counts(t) for name, t in sorted(splits.items())},
                         "splits": split_of,
                         "majority": {name: _cells_dict(majority_agreement(t))
                                      for name, t in sorted(splits.items())},
                         "models": {}, "heldout": {}}
    tsne_arrays: dict[str, np.ndarray] = {}
    for model in models:
        normal, sets, first, info = loaded[model]
        meta = first.meta
        result["models"][model] = {**info, "sources": list(first.sources), "exp_dir": meta.get("exp_dir", ""),
                                   "device": meta.get("device", "")}
        result["config"].setdefault("sources", list(first.dump_sources))  # the report's column order
        log(f"scoring {model}")
        if normal is not None:
            rate = int(normal.meta.get("sample_rate", 44100))
            result["config"]["segment_seconds"] = round(normal.length / rate, 3)
            _id_scores(result, "mes_normal", model, mes_normal(normal, k))
        if sets["pseudo"] is not None:
            _id_scores(result, "mes_pseudo", model, mes_pseudo(sets["pseudo"], k))
        if sets["vis"] is not None:
            vis = sets["vis"]
            scores6 = target_and_non_target(vis, k)
            result["table6"][model] = {s: {kind: v.as_dict() for kind, v in pair.items()}
                                       for s, pair in scores6.items()}
            for s, pair in scores6.items():
                result["chance"].setdefault("table6", {})[s] = pair["target"].chance
                result["perfect"].setdefault("table6", {})[s] = pair["target"].perfect
            if tsne:
                tsne_arrays.update(_tsne_panels(model, vis, seed))
        if sets["swap"] is not None:
            result["swap"][model] = {s: v.as_dict() for s, v in swap_shares(sets["swap"]).items()}
        if sets["abx"] is not None and splits:
            agreement = perceptual_agreement(sets["abx"], splits[split_of[model]])
            result["abx"]["models"][model] = _cells_dict(agreement)
            if abx_split == "auto" and split_of[model] == "all" and any(infos[m]["paft_of"] for m in models):
                heldout = perceptual_agreement(sets["abx"], splits["test"])
                result["abx"]["heldout"][model] = _cells_dict(heldout)
            result["chance"]["abx"] = 0.5
    excerpts: dict[str, float] = {}
    for model, tracks in load_sdr(root, excerpts).items():
        result["sdr"][model] = median_over_tracks(tracks)
        result["config"].setdefault("sdr_tracks", {})[model] = len(tracks)
    if excerpts:
        result["config"]["sdr_seconds"] = excerpts
    result["sdr"] = {m: result["sdr"][m] for m in model_order(list(result["sdr"]), result["models"])}
    result = _clean(result)
    _write_json(root / SCORES_FILE, result)
    if tsne_arrays:
        np.savez(root / TSNE_FILE, **tsne_arrays)
    return result


def _tsne_panels(model: str, vis: EmbeddingSet, seed: int) -> dict[str, np.ndarray]:
    """2-D t-SNE of each source's visualisation items: coordinates, target and non-target piece."""
    from inmsrl.eval.plots import tsne_coordinates

    arrays = {}
    for j, source in enumerate(vis.sources):
        b = vis.dump_sources.index(source)
        rows = np.flatnonzero(vis.target == b)
        if len(rows) < 5:
            continue
        other = next(s for s in range(len(vis.dump_sources)) if s != b)
        arrays[f"{model}/{source}/xy"] = tsne_coordinates(vis.vectors[rows, j], seed)
        arrays[f"{model}/{source}/target"] = vis.origins[rows, b, 0]
        arrays[f"{model}/{source}/non_target"] = vis.origins[rows, other, 0]
    return arrays


def _write_json(path: Path, content: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(content, indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)
