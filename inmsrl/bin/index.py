"""Build or update a search index from embedding files (``inmsrl embed-files`` output).

``inmsrl index --index I EMB...`` adds the tracks of the embedding files and folders given (an index is
created when I does not exist); a track already indexed is replaced when its embeddings changed and
kept otherwise. ``--remove ID...`` removes tracks. Every track of an index comes from one model and one
windowing (vectors of others are refused: they are not comparable). ``--hnsw`` stores the graphs of
approximate search in the index, so that ``inmsrl search --approximate`` does not build them per call.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("embeddings", nargs="*", metavar="EMB", help="embedding files or folders to add")
    parser.add_argument("--index", required=True, help="index directory (created if absent)")
    parser.add_argument("--remove", nargs="+", default=[], metavar="ID", help="track ids to remove")
    parser.add_argument("--hnsw", action="store_true", help="store HNSW graphs for --approximate search")


def run(args: argparse.Namespace) -> int:
    from inmsrl.search.embedding_file import EmbeddingFileError, TrackEmbedding, find_embedding_files
    from inmsrl.search.index import MANIFEST, Index, SearchIndexError

    root = Path(args.index)
    if not args.embeddings and not args.remove and not args.hnsw:
        print("inmsrl index: nothing to do: give embedding files to add, --remove IDs or --hnsw",
              file=sys.stderr)
        return 2
    try:
        tracks = [TrackEmbedding.load(path) for path in find_embedding_files(args.embeddings)]
        if (root / MANIFEST).exists():
            index = Index.open(root)
        elif tracks:
            index = Index.empty_like(tracks[0])
        else:
            print(f"inmsrl index: {root} does not exist and no embeddings were given", file=sys.stderr)
            return 1
        removed = index.remove(args.remove)
        added, replaced, unchanged = index.add(tracks)
        index.save(root, hnsw=args.hnsw)
    except (EmbeddingFileError, SearchIndexError) as err:
        print(f"inmsrl index: {err}", file=sys.stderr)
        return 1
    print(f"{root}: {added} added, {replaced} replaced, {unchanged} unchanged, {removed} removed; "
          f"{len(index)} tracks, {index.num_windows} windows of {', '.join(index.sources)}")
    return 0
