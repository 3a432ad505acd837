"""Serve a model over HTTP: `python serve.py --model_path MODEL [--host 127.0.0.1] [--port 8000] [decoder options]`.

MODEL: a checkpoint (its run's config.json next to it), an exported .mindir or .onnx file, loaded once. The page is
at http://HOST:PORT/, the API at /v1/transcribe (upload) and /v1/stream (live); src/server.py documents both.
Exit status: 0 stopped by Ctrl-C/SIGTERM, 1 the address cannot be bound, 2 bad options or model.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    from src.server import add_server_args
    from src.transcription import add_transcriber_args

    parser = argparse.ArgumentParser(description="DeepSpeech2 transcription server with a web page")
    add_server_args(parser)
    add_transcriber_args(parser)
    parser.add_argument("--verbose", action="store_true", help="log requests and progress on stderr")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("GLOG_v", "3")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    from src import server
    from src import transcription as T

    try:
        limits = server.limits_from_args(args)
        transcriber = T.build_transcriber(args)
    except (FileNotFoundError, ValueError, KeyError, ImportError) as err:
        print(f"error: {err.args[0] if isinstance(err, KeyError) else err}", file=sys.stderr)
        return 2
    try:
        server.serve(transcriber, Path(args.model_path).name, args.host, args.port, limits, args.warmup)
    except OSError as err:
        print(f"error: cannot listen on {args.host}:{args.port}: {err.strerror or err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
