"""`heimdex serve`: the search page and HTTP API."""

from __future__ import annotations

import argparse

from heimdex_pipeline.settings import Settings


def run_serve(args: argparse.Namespace, settings: Settings) -> int:
    import dataclasses
    import logging

    import uvicorn

    from heimdex_pipeline.serve.app import create_app

    serve = dataclasses.replace(
        settings.serve, host=args.host or settings.serve.host, port=args.port or settings.serve.port
    )
    settings = dataclasses.replace(settings, serve=serve)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    print(f"Heimdex search on http://{serve.host}:{serve.port}/ (API docs at /docs)", flush=True)
    uvicorn.run(create_app(settings), host=serve.host, port=serve.port, access_log=False)
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add the command's parser."""
    serve = commands.add_parser("serve", help="the search page and HTTP API")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.set_defaults(run=run_serve)
