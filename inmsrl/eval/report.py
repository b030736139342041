"""RESULTS.md and RESULTS.json of a recipe, generated from its scores (``inmsrl score``'s scores.json).

The Markdown has the environment (date, versions, git revision, devices) and the paper's Tables 1-6 in
their shape — methods as rows, instruments as columns, "-" where a model has no such embedding — with
every trained model, the MFCC baselines and chance level; the JSON holds the same numbers unrounded.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from inmsrl.data.abx import CONDITIONS
from inmsrl.eval.plots import plot_tsne
from inmsrl.eval.scoring import BASELINES, MIXTURE, SCORES_FILE, TSNE_FILE, model_label, model_order

DASH = "-"
BOUNDS_NOTE = (" Chance: what a model with random vectors scores with this vote on these items; perfect "
               "separation: a model that puts each music ID's items at one point (it can score less than "
               "100 % where an ID has too few items to outvote its nearest neighbour).")


def _fmt(value: float | None, digits: int = 2) -> str:
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    return DASH if missing else f"{value:.{digits}f}"


def _source_order(scores: Mapping) -> list[str]:
    """The data's source order: the dump's, as ``inmsrl score`` records it, else the order in which the
    models list their sources (scores written before the dump's order was recorded)."""
    recorded = scores.get("config", {}).get("sources")
    if recorded:
        return list(recorded)
    models = scores.get("models", {}).values()
    return list(dict.fromkeys(s for info in models for s in info.get("sources", [])))


def _sources(scores: Mapping, *tables: Mapping[str, Mapping[str, object]]) -> list[str]:
    """The instruments of ``tables`` as table columns, in the data's order; others (the ABX set's
    ``mix``) after them, alphabetically."""
    names = {s for table in tables for row in table.values() for s in row}
    order = _source_order(scores)
    return sorted(names, key=lambda s: (order.index(s) if s in order else len(order), s))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: bool = True) -> list[str]:
    """A Markdown table; the columns after the first are right-aligned when they hold numbers."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 or not numeric else "---:"
                                                               for i in range(len(header))) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _label(scores: Mapping, model: str) -> str:
    return scores.get("models", {}).get(model, {}).get("label") or model_label(model)


def _order(scores: Mapping, names: Sequence[str]) -> list[str]:
    return model_order(names, scores.get("models", {}))


def _mes_table(scores: Mapping, key: str, title: str, note: str) -> list[str]:
    table = scores.get(key, {})
    if not table:
        return []
    sources = _sources(scores, table)
    rows = [[_label(scores, m), *(_fmt(100 * table[m][s]["accuracy"]) if s in table[m] else DASH
                                  for s in sources)] for m in _order(scores, list(table))]
    for bound, label in (("chance", "chance (a random model)"), ("perfect", "perfect separation")):
        values = scores.get(bound, {}).get(key, {})
        if values:
            rows.append([label, *(_fmt(100 * values[s]) if s in values else DASH for s in sources)])
    return [f"### {title}", "", note + BOUNDS_NOTE, "", *_table(["Method", *sources], rows), ""]


def _sdr_table(scores: Mapping) -> list[str]:
    table = scores.get("sdr", {})
    if not table:
        return []
    sources = _sources(scores, {m: v for m, v in table.items() if m != MIXTURE}) or _sources(scores, table)
    order = _order(scores, list(table))  # the mixture, the reference row, first
    rows = [[_label(scores, m), *(_fmt(table[m].get(s)) for s in sources)] for m in order]
    tracks = scores.get("config", {}).get("sdr_tracks", {})
    count = max(tracks.values()) if tracks else 0
    seconds = set(scores.get("config", {}).get("sdr_seconds", {}).values())
    excerpt = f" (the first {max(seconds):g} s of each)" if seconds else ""
    return ["### Table 4: separation quality, SDR (dB)", "",
            f"museval BSS Eval v4, median over 1 s frames, then over {count} test tracks{excerpt}; the "
            "unprocessed mixture is the reference row.", "", *_table(["Method", *sources], rows), ""]


def _agreement_cell(cell: Mapping | None) -> str:
    if cell is None or cell.get("accuracy") is None:
        return DASH
    low, high = cell["ci95"]
    return f"{100 * cell['accuracy']:.2f} [{_fmt(100 * low if low is not None else None)}, " \
           f"{_fmt(100 * high if high is not None else None)}]"


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _agreement_row(label: str, cells: Mapping, sources: Sequence[str], mean_sources: Sequence[str]
                   ) -> list[str]:
    values = [cells[s]["accuracy"] for s in mean_sources if (cells.get(s) or {}).get("accuracy") is not None]
    return [label, *(_agreement_cell(cells.get(s)) for s in sources),
            _fmt(100 * _mean(values) if values else None)]


def _paft_row(label: str, cell_runs: Sequence[Mapping], sources: Sequence[str],
              mean_sources: Sequence[str]) -> list[str]:
    """A PAFT variant's row: one run's cells, or mean ± std over its runs."""
    row = [label + (f" ({len(cell_runs)} runs)" if len(cell_runs) > 1 else "")]
    for s in sources:
        acc = [c[s]["accuracy"] for c in cell_runs if s in c]
        if not acc:
            row.append(DASH)
        elif len(acc) == 1:
            row.append(_agreement_cell(cell_runs[0][s]))
        else:
            row.append(f"{100 * np.mean(acc):.2f} ± {100 * np.std(acc):.2f}")
    means = [_mean([c[s]["accuracy"] for s in mean_sources if s in c]) for c in cell_runs]
    means = [v for v in means if v is not None]
    if len(means) > 1:
        row.append(f"{100 * np.mean(means):.2f} ± {100 * np.std(means):.2f}")
    else:
        row.append(_fmt(100 * float(np.mean(means)) if means else None))
    return row


_SPLIT_TEXT = {"all": "all confident triplets", "test": "the held-out 30 % (PAFT trains on the rest)",
               "train": "the 70 % PAFT learns from (a diagnostic)"}


def _abx_tables(scores: Mapping, mean_sources: Sequence[str] | None) -> list[str]:
    abx = scores.get("abx", {})
    per_model = abx.get("models", {})
    if not per_model:
        return []
    models = _order(scores, list(per_model))
    if mean_sources is None:  # every instrument of the table
        mean_sources = _sources(scores, *({m: per_model[m].get(c, {}) for m in models} for c in CONDITIONS))
    info = scores.get("models", {})
    plain = [m for m in models if not info.get(m, {}).get("paft_of")]
    paft: dict[tuple[str, str], list[str]] = {}  # (base model, label) -> the runs of one PAFT config
    for m in models:
        base = info.get(m, {}).get("paft_of")
        if base:
            paft.setdefault((base, info[m].get("group") or _label(scores, m)), []).append(m)
    split_of = abx.get("splits", {})
    plain_split, heldout = abx.get("split", "all"), abx.get("heldout", {})
    paft_split = next((split_of[m] for runs in paft.values() for m in runs if m in split_of), "test")
    lines = ["### Table 5: perceptual similarity agreement (%)", "",
             "Share of the listeners' responses that give the model's answer (the paper's counting: k of n "
             "responses), on the ABX triplets where more than 75 % of the answers agree; [95 % "
             "Clopper-Pearson interval]; mean = mean over "
             f"{', '.join(mean_sources)}. Models are scored on {_SPLIT_TEXT.get(plain_split, plain_split)}"
             + (f"; \"w/ PAFT\" rows on {_SPLIT_TEXT.get(paft_split, paft_split)}, mean ± std over PAFT "
                "runs where there are several, under the model they start from scored on the same "
                "triplets" if paft else "")
             + ". A random answer scores 50 % in expectation; the listeners' majority is the upper "
             "bound.", ""]
    majority = abx.get("majority", {})
    for condition in CONDITIONS:
        sources = _sources(scores, {m: per_model[m].get(condition, {}) for m in models})
        if not sources:
            continue
        rows = []
        for m in _with_paft_rows(plain, paft):
            if isinstance(m, tuple):  # a PAFT configuration: its runs in one row
                rows.append(_paft_row(m[1], [per_model[r].get(condition, {}) for r in paft[m]], sources,
                                      mean_sources))
                continue
            rows.append(_agreement_row(_label(scores, m), per_model[m].get(condition, {}), sources,
                                       mean_sources))
            if m in heldout and any(base == m for base, _ in paft):
                rows.append(_agreement_row(f"{_label(scores, m)}, held-out 30 %",
                                           heldout[m].get(condition, {}), sources, mean_sources))
        for split in dict.fromkeys((plain_split, paft_split if paft else plain_split)):
            cells = majority.get(split, {}).get(condition, {})
            if cells:
                label = "listeners' majority (upper bound)" + (", held-out 30 %" if split == "test" else "")
                rows.append(_agreement_row(label, cells, sources, mean_sources))
        counts = abx.get("evaluated_by_split", {}).get(plain_split) or abx.get("evaluated", {})
        lines += [f"**{condition}** (triplets evaluated: "
                  + ", ".join(f"{s} {counts.get(condition, {}).get(s, 0)}" for s in sources) + ")", "",
                  *_table(["Method", *sources, "mean"], rows), ""]
    lines += _triplet_view(scores, models, mean_sources)
    return lines


def _triplet_view(scores: Mapping, models: Sequence[str], mean_sources: Sequence[str]) -> list[str]:
    """Table 5b: the share of confident triplets whose majority the model gives (mean over instruments)."""
    per_model = scores.get("abx", {}).get("models", {})
    rows = []
    for m in models:
        row = [_label(scores, m)]
        for condition in CONDITIONS:
            cells = per_model[m].get(condition, {})
            values = [cells[s]["triplets"]["accuracy"] for s in mean_sources
                      if (cells.get(s) or {}).get("triplets", {}).get("accuracy") is not None]
            row.append(_fmt(100 * _mean(values) if values else None))
        rows.append(row)
    if not any(cell != DASH for row in rows for cell in row[1:]):
        return []
    return ["### Table 5b: agreement counted over triplets (%)", "",
            "A second view of Table 5 (not the paper's): the share of the confident triplets whose "
            f"listeners' majority the model gives, mean over {', '.join(mean_sources)}; same triplets as "
            "Table 5.", "",
            *_table(["Method", *CONDITIONS], rows), ""]


def _with_paft_rows(plain: Sequence[str], paft: Mapping[tuple[str, str], list[str]]
                    ) -> list[str | tuple[str, str]]:
    """Table 5's row order: each model, then the PAFT configurations that start from it (one row each,
    over its runs), as the paper lists them; PAFT of a model not scored comes last."""
    order: list[str | tuple[str, str]] = []
    for m in plain:
        order += [m, *(group for group in paft if group[0] == m)]
    return order + [group for group in paft if group not in order]


def _abx_counts(scores: Mapping) -> list[str]:
    counts = scores.get("abx", {}).get("counts", {})
    if not counts:
        return []
    cells = {tuple(key.split("/")): value for key, value in counts.items()}
    sources = _sources(scores, {"all": {i: 1 for (i, _) in cells}})
    rows = []
    for what, total, kept in (("The number of ABX data", "triplets", "confident_triplets"),
                              ("The number of subject responses", "responses", "confident_responses")):
        rows.append([f"**{what}**", *([""] * len(sources))])
        for field, name in ((total, "all"), (kept, "above 75%")):
            for condition in CONDITIONS:
                rows.append([f"{name} ({condition})",
                             *(str(cells.get((s, condition), {}).get(field, 0)) for s in sources)])
    return ["### Table 1: ABX data", "", f"From {scores['abx'].get('dir', '')}.", "",
            *_table(["", *sources], rows), ""]


def _table6(scores: Mapping) -> list[str]:
    table = scores.get("table6", {})
    if not table:
        return []
    sources = _sources(scores, table)
    rows = []
    for m in _order(scores, list(table)):
        row = table[m]
        rows.append([_label(scores, m),
                     *(_fmt(100 * row[s]["target"]["accuracy"]) if s in row else DASH for s in sources),
                     *(_fmt(100 * row[s]["non_target"]["accuracy"]) if s in row else DASH for s in sources)])
    for bound, label in (("chance", "chance (a random model)"), ("perfect", "perfect separation")):
        values = scores.get(bound, {}).get("table6", {})
        if values:
            row = [_fmt(100 * values[s]) if s in values else DASH for s in sources]
            rows.append([label, *row, *row])
    header = ["Method", *(f"target {s} ↑" for s in sources), *(f"non-target {s} ↓" for s in sources)]
    return ["### Table 6: MES-Pseudo of the visualisation set, target and non-target music IDs (%)", "",
            "5-NN vote on the pseudo segments of the figure, excluding the query's own pseudo piece; "
            "high for the target piece's ID and low for the non-target piece's ID means the model hears "
            "the target instrument only." + BOUNDS_NOTE, "", *_table(header, rows), ""]


def _swap_table(scores: Mapping) -> list[str]:
    table = scores.get("swap", {})
    if not table:
        return []
    sources = _sources(scores, table)
    rows = [[_label(scores, m), *(_fmt(table[m][s]["share"]) if s in table[m] else DASH for s in sources)]
            for m in _order(scores, list(table))]
    pairs = max((cell["pairs"] for row in table.values() for cell in row.values()), default=0)
    return ["### Swap test: how much of an instrument's embedding movement comes from that instrument", "",
            f"For {pairs} pairs of test segments of different pieces per instrument: replace only the "
            "instrument's part with the other segment's, or only every other part, and measure how far the "
            "instrument's embedding moves each time; the share of the first movement in the sum. 1: the "
            "embedding hears the instrument only; 0: only the rest. A model fed clean stems scores 1 by "
            "construction.", "", *_table(["Method", *sources], rows), ""]


def _environment(environment: Mapping, scores: Mapping) -> list[str]:
    packages = environment.get("packages", {})
    devices = sorted({info.get("device", "") for info in scores.get("models", {}).values()} - {""})
    lines = ["## Environment", "",
             f"- date: {environment.get('date', '')}",
             f"- inmsrl {environment.get('inmsrl', '')}, git {environment.get('git', '')}",
             f"- python {environment.get('python', '')} on {environment.get('platform', '')}",
             "- " + ", ".join(f"{k} {v}" for k, v in packages.items()),
             f"- devices of this machine: {'; '.join(environment.get('devices', []))}"]
    if devices:
        lines.append(f"- embeddings computed on: {'; '.join(devices)}")
    return lines + [""]


def _models_section(scores: Mapping) -> list[str]:
    models = scores.get("models", {})
    if not models:
        return []
    rows = [[_label(scores, m), m, models[m].get("kind", ""), ", ".join(models[m].get("sources", [])),
             models[m].get("exp_dir", "") or DASH] for m in _order(scores, list(models))]
    header = ["Method", "name", "kind", "embedded sources", "experiment"]
    return ["## Models", "", *_table(header, rows, numeric=False), ""]


def render_markdown(scores: Mapping, environment: Mapping, title: str = "Results", figure: str | None = None,
                    mean_sources: Sequence[str] | None = None) -> str:
    """The RESULTS.md text of ``scores`` (as ``score_all`` returns them); Table 5's mean column is over
    ``mean_sources`` (default: every instrument of the table)."""
    k = scores.get("config", {}).get("k", 5)
    seconds = scores.get("config", {}).get("segment_seconds", 10)
    lines = [f"# {title}", "",
             "Generated by `inmsrl report` from the scores of recipe stage 8 (re-run `--stage 8` to "
             "rebuild); every number is also in RESULTS.json. Learned models are shown against the "
             f"MFCC-statistics baselines ({'; '.join(model_label(b) for b in BASELINES)}) and chance "
             "level.", ""]
    lines += _environment(environment, scores)
    lines += _models_section(scores)
    lines += ["## Tables", ""]
    lines += _abx_counts(scores)
    lines += _mes_table(scores, "mes_normal", "Table 2: MES-Normal (%)",
                        f"{k}-NN music-ID accuracy on every {seconds:g} s test segment, leave-one-out, each "
                        "instrument with its own dimensions only, silent targets left out.")
    lines += _mes_table(scores, "mes_pseudo", "Table 3: MES-Pseudo (%)",
                        f"{k}-NN music-ID accuracy on the pseudo test pieces (target pieces with their "
                        "pseudo pieces); the label is the target piece, a query's own piece never votes.")
    lines += _sdr_table(scores)
    lines += _abx_tables(scores, mean_sources)
    lines += _table6(scores)
    lines += _swap_table(scores)
    if figure:
        lines += ["### Figure 7: t-SNE of the visualisation set", "",
                  f"![t-SNE: colour = target piece, marker = non-target piece]({figure})", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_report(scores_dir: str | Path, out: str | Path, environment: Mapping, title: str = "Results",
                 mean_sources: Sequence[str] | None = None) -> dict[str, Path]:
    """Write ``out`` (RESULTS.md), the JSON beside it and the t-SNE figure; returns their paths."""
    scores_dir, out = Path(scores_dir), Path(out)
    scores_path = scores_dir / SCORES_FILE
    if not scores_path.is_file():
        raise FileNotFoundError(f"{scores_path} does not exist: run 'inmsrl score' first")
    scores = json.loads(scores_path.read_text())
    written = {"markdown": out, "json": out.with_suffix(".json")}
    figure = None
    tsne_path = scores_dir / TSNE_FILE
    if tsne_path.is_file():
        with np.load(tsne_path) as data:
            panels: dict[tuple[str, str], dict[str, np.ndarray]] = {}
            for key in data.files:
                model, source, what = key.split("/")
                panels.setdefault((model, source), {})[what] = data[key]
        models = [(m, _label(scores, m)) for m in _order(scores, sorted({m for m, _ in panels}))]
        sources = _sources(scores, {m: {s: 1 for mm, s in panels if mm == m} for m, _ in models})
        written["figure"] = plot_tsne(panels, models, sources, out.with_name(f"{out.stem}_tsne.png"))
        figure = written["figure"].name
    markdown = render_markdown(scores, environment, title, figure, mean_sources)
    out.parent.mkdir(parents=True, exist_ok=True)
    for path, text in ((out, markdown),
                       (written["json"], json.dumps({"environment": environment, **scores}, indent=2,
                                                    allow_nan=False) + "\n")):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return written

