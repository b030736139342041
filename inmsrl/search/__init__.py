"""Use a trained model on any music: embed audio files, index them, search per instrument, listen.

- :class:`~inmsrl.search.embedder.Embedder`: a packed model (or experiment) → per-window embeddings of
  files of any format or of arrays;
- :class:`~inmsrl.search.index.Index`: tracks' embeddings, searched by a weighted sum of per-instrument
  Euclidean distances, exactly or approximately (candidate tracks, ranked exactly; compiled kernels in
  :mod:`~inmsrl.search.kernels`);
- :mod:`~inmsrl.search.server`: the listening page of ``inmsrl serve``.

The layer sits above ``eval`` and below ``bin``.
"""

from inmsrl.search.embedder import Embedder
from inmsrl.search.embedding_file import TrackEmbedding
from inmsrl.search.index import Hit, Index, SearchIndexError

__all__ = ["Embedder", "Hit", "Index", "SearchIndexError", "TrackEmbedding"]
