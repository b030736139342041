"""Serve the listening page of an index: pick or upload a query, weigh instruments, hear the hits.

Binds 127.0.0.1 by default (this machine only); ``--host 0.0.0.0`` opens it to the network. Only the
index's audio files are served (by their number in the index, never by a path from the request), and
uploads over --max-upload-mb are refused. Uploads are embedded with the index's model (or --model).
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", required=True, help="index directory (inmsrl index)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on [%(default)s]")
    parser.add_argument("--port", type=int, default=8000, help="[%(default)s]")
    parser.add_argument("--model", help="model to embed uploads [the one the index records]")
    parser.add_argument("--no-uploads", action="store_true", help="only search with indexed tracks")
    parser.add_argument("--max-upload-mb", type=float, default=50.0, help="[%(default)s]")
    parser.add_argument("--device", default="auto", help="device to embed uploads on [%(default)s]")


def run(args: argparse.Namespace) -> int:
    from inmsrl.models.pretrained import ModelFileError
    from inmsrl.search.embedder import index_embedder
    from inmsrl.search.index import Index, SearchIndexError
    from inmsrl.search.server import SearchService, make_server

    try:
        index = Index.open(args.index)
        embed = None
        if not args.no_uploads and (args.model or index.model.get("model_path")):
            embed = index_embedder(index, args.model, args.device).embed_file
    except (SearchIndexError, ModelFileError) as err:
        print(f"inmsrl serve: {err}", file=sys.stderr)
        return 1
    service = SearchService(index, embed, int(args.max_upload_mb * 2**20))
    server = make_server(service, args.host, args.port)
    host, port = server.server_address[:2]
    print(f"inmsrl serve: {len(index)} tracks of {args.index} on http://{host}:{port}/ (Ctrl-C stops)",
          flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"inmsrl serve: WARNING: listening on {args.host}: anyone who reaches it can search and "
              f"play the indexed audio", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
