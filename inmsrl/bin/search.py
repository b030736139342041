"""Search an index: the tracks whose instruments sound most like the query's, by instrument weights.

The query is an indexed track id or an audio file (embedded with the index's model, or --model). A
track's distance is the weighted sum of per-instrument Euclidean distances between its best-matching
window and a query window, e.g. ``--weights piano=1`` finds songs whose piano is like the query's;
without --weights every instrument weighs 1. Each hit gives that window pair (query time, match time).
``--approximate`` searches large indexes: candidate tracks by their mean vectors and by HNSW window
neighbours, ranked exactly.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from inmsrl.search.embedding_file import TrackEmbedding
    from inmsrl.search.index import Index


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", required=True, help="index directory (inmsrl index)")
    parser.add_argument("--query", required=True, help="an indexed track id, or an audio file")
    parser.add_argument("--weights", help="instrument weights, e.g. piano=0.7,drums=0.3 [all 1]")
    parser.add_argument("-k", type=int, default=10, help="number of hits [%(default)s]")
    parser.add_argument("--format", choices=("json", "tsv"), default="tsv", help="[%(default)s]")
    parser.add_argument("--approximate", action="store_true",
                        help="rank only candidate tracks (for large indexes), exactly")
    parser.add_argument("--candidates", type=int, default=100,
                        help="approximate: tracks whose mean vectors are nearest to a query window "
                             "[%(default)s]")
    parser.add_argument("--window-candidates", type=int, default=16,
                        help="approximate: nearest windows per query window in the HNSW graph of the "
                             "heaviest-weighted instrument(s), whose tracks are candidates too (a "
                             "match in one passage); 0: means only [%(default)s]")
    parser.add_argument("--exclude-query", action="store_true", help="leave the query track out of the hits")
    parser.add_argument("--model", help="model to embed a query file [the one the index records]")
    parser.add_argument("--device", default="auto", help="device to embed a query file on [%(default)s]")


def resolve_query(index: Index, query: str, model: str | None, device: str = "auto") -> TrackEmbedding | str:
    """An indexed track id as it is; an audio file embedded with the index's model (or ``model``)."""
    from inmsrl.search.embedder import index_embedder
    from inmsrl.search.index import SearchIndexError

    if any(t.track_id == query for t in index.tracks):
        return query
    if not Path(query).is_file():
        raise SearchIndexError(f"--query {query}: neither a track of the index nor an audio file")
    embedder = index_embedder(index, model, device)
    return embedder.embed_file(query)


def run(args: argparse.Namespace) -> int:
    from inmsrl.audio.io import AudioReadError
    from inmsrl.models.pretrained import ModelFileError
    from inmsrl.search.index import Index, SearchIndexError

    try:
        index = Index.open(args.index)
        query = resolve_query(index, args.query, args.model, args.device)
        exclude = [query if isinstance(query, str) else query.track_id] if args.exclude_query else []
        hits = index.search(query, args.weights, args.k, approximate=args.approximate,
                            candidates=args.candidates, window_candidates=args.window_candidates,
                            exclude=exclude)
    except (SearchIndexError, ModelFileError, AudioReadError) as err:
        print(f"inmsrl search: {err}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps([hit.to_dict() for hit in hits], indent=1))
        return 0
    print("rank\ttrack\tdistance\tquery_time\tmatch_time\t" + "\t".join(f"d_{s}" for s in index.sources))
    for hit in hits:
        per_source = "\t".join(f"{hit.per_source[s]:.4f}" if s in hit.per_source else ""
                               for s in index.sources)
        print(f"{hit.rank}\t{hit.track_id}\t{hit.distance:.4f}\t{hit.query_time:.2f}\t{hit.match_time:.2f}\t"
              f"{per_source}")
    return 0
