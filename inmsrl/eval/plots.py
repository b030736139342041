"""The visualisation of §4.2.4 (Fig. 7): t-SNE of the pseudo segments, one panel per model and source.

Colour = the target piece (whose target-source stem the segment carries), marker = the non-target piece
(whose other stems it carries). Same colour, different markers clustering together means the model
hears the target instrument only; same marker, different colours means it hears the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">", "h", "p")


def tsne_coordinates(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """(n, 2) t-SNE embedding of ``vectors`` (scikit-learn, PCA initialisation, seeded)."""
    from sklearn.manifold import TSNE

    vectors = np.asarray(vectors, dtype=np.float64)
    perplexity = float(min(30.0, max(2.0, (len(vectors) - 1) / 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(vectors)


def plot_tsne(panels: Mapping[tuple[str, str], Mapping[str, np.ndarray]], models: Sequence[tuple[str, str]],
              sources: Sequence[str], path: str | Path) -> Path:
    """Draw ``panels[(model, source)] = {"xy", "target", "non_target"}`` as a models × sources grid PNG;
    ``models`` gives (name, label) in row order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(models), len(sources), figsize=(3.2 * len(sources), 3.2 * len(models)),
                             squeeze=False)
    colours = plt.get_cmap("tab10")
    for r, (model, label) in enumerate(models):
        for c, source in enumerate(sources):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(source)
            if c == 0:
                ax.set_ylabel(label, fontsize=9)
            panel = panels.get((model, source))
            if panel is None:
                ax.text(0.5, 0.5, "not embedded", ha="center", va="center", color="0.5",
                        transform=ax.transAxes)
                continue
            targets = {t: i for i, t in enumerate(np.unique(panel["target"]))}
            others = {t: i for i, t in enumerate(np.unique(panel["non_target"]))}
            pairs = set(zip(panel["target"].tolist(), panel["non_target"].tolist(), strict=True))
            for t, o in sorted(pairs):
                keep = (panel["target"] == t) & (panel["non_target"] == o)
                ax.scatter(panel["xy"][keep, 0], panel["xy"][keep, 1], s=30, alpha=0.8,
                           color=colours(targets[t] % 10), marker=MARKERS[others[o] % len(MARKERS)],
                           linewidths=0)
    fig.suptitle("t-SNE of pseudo-musical pieces: colour = target piece, marker = non-target piece")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / (3.2 * len(models))))  # keep the title off the top row
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
