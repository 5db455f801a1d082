"""`logsam serve`: the engine behind an HTTP API (models loaded once, a job queue, a bearer token)."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

from ..errors import LoGSAMError
from .common import add_verbose

HELP = "serve the engine over HTTP for Slicer, `logsam run --server` and other clients"
MB = 1024 * 1024


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve", help=HELP, description=HELP + ". Binds 127.0.0.1 unless told otherwise; every request but "
        "/version needs the bearer token (`logsam serve --print-token`).")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1; any other needs --certfile/--keyfile or --insecure)")
    parser.add_argument("--port", type=int, default=8470, help="port (default 8470; 0 picks a free one)")
    parser.add_argument("--token-file", type=Path, default=None,
                        help="where the token is kept (created with 0600 permissions on first start; "
                             "default: the user config folder's LoGSAM/server.token)")
    parser.add_argument("--print-token", action="store_true", help="print the token (creating it if needed) and exit")
    parser.add_argument("--ready-file", type=Path, default=None,
                        help="once listening, write JSON {url, port, pid, api_version, version} here (atomically)")
    parser.add_argument("--parent-pid", type=int, default=None, metavar="PID",
                        help="stop (cleanly) when process PID has ended, e.g. the Slicer that started this engine")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="jobs run at once (default 1); each worker loads its own copy of the models")
    parser.add_argument("--device", default=None, help="device for every job: auto (default), cpu, cuda, cuda:N, mps")
    parser.add_argument("--precision", choices=("fp32", "fp16", "bf16"), default=None)
    parser.add_argument("--certfile", type=Path, help="TLS certificate (PEM) for https")
    parser.add_argument("--keyfile", type=Path, help="TLS private key (PEM) for https")
    parser.add_argument("--insecure", action="store_true",
                        help="allow plain http on a non-loopback address (the token and images travel unencrypted)")
    parser.add_argument("--max-upload-mb", type=float, default=1024, help="largest volume upload (default 1024)")
    parser.add_argument("--max-audio-mb", type=float, default=100, help="largest audio upload (default 100)")
    parser.add_argument("--max-decompressed-mb", type=float, default=2048,
                        help="largest volume once decompressed (default 2048)")
    parser.add_argument("--job-ttl", type=float, default=3600, metavar="SECONDS",
                        help="delete a finished job's files after this long if nobody fetches its result "
                             "(default 3600)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="parent of the per-job folders (default: the system temp folder)")
    ray = parser.add_argument_group("Ray Serve (several warm replicas behind one address)")
    ray.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                     help="serve on Ray Serve: a local Ray instance, or the cluster at ADDRESS ('auto')")
    ray.add_argument("--replicas", type=int, default=1, help="with --ray: engine replicas (default 1)")
    ray.add_argument("--gpus-per-replica", type=float, default=0.0, metavar="G",
                     help="with --ray: GPUs per replica (default 0: CPU replicas)")
    ray.add_argument("--cpus-per-replica", type=float, default=1.0, metavar="C",
                     help="with --ray: CPU cores per replica (default 1)")
    add_verbose(parser)
    parser.set_defaults(func=run)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    from ..service.auth import default_token_file, ensure_token

    token = ensure_token(args.token_file or default_token_file())
    if args.print_token:
        print(token)
        return 0
    tls = args.certfile is not None or args.keyfile is not None
    if tls and (args.certfile is None or args.keyfile is None):
        raise LoGSAMError("TLS needs both --certfile and --keyfile.")
    if not _is_loopback(args.host):
        if not tls and not args.insecure:
            raise LoGSAMError(f"Binding {args.host} exposes the engine to the network: give --certfile and "
                              "--keyfile for https, or --insecure to accept plain http.")
        if not tls:
            print(f"logsam serve: WARNING: serving plain http on {args.host}: the token, the images and the "
                  "results travel unencrypted on the network.", file=sys.stderr, flush=True)
    return _serve(args, token, tls)


def _serve(args: argparse.Namespace, token: str, tls: bool) -> int:
    import uvicorn

    from .. import __version__
    from ..atomic import write_text_atomic
    from ..service import API_VERSION
    from ..service.app import create_app
    from ..service.settings import ServeSettings

    settings = ServeSettings(
        token=token, work_dir=args.work_dir, concurrency=max(1, args.concurrency), device=args.device,
        precision=args.precision, max_upload_bytes=int(args.max_upload_mb * MB),
        max_audio_bytes=int(args.max_audio_mb * MB), max_decompressed_bytes=int(args.max_decompressed_mb * MB),
        job_ttl_s=args.job_ttl)
    if args.ray is not None:
        from ..service.ray_serve import serve_forever

        return serve_forever(settings, args)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as error:
        raise LoGSAMError(f"Cannot listen on {args.host}:{args.port}: {error.strerror}; pick another --port "
                          "(0 picks a free one).") from None
    sock.listen(128)
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if family == socket.AF_INET6 else args.host
    url = f"{'https' if tls else 'http'}://{host}:{port}"
    config = uvicorn.Config(
        create_app(settings), log_level="info" if getattr(args, "verbose", False) else "warning",
        ssl_certfile=str(args.certfile) if tls else None, ssl_keyfile=str(args.keyfile) if tls else None,
        timeout_graceful_shutdown=5, access_log=False)
    ready = args.ready_file
    if ready is not None:
        with contextlib.suppress(FileNotFoundError):
            ready.unlink()  # left by a killed engine: it must not be taken for this one

    class _Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            super().handle_exit(sig, frame)
            self._captured_signals.clear()  # a graceful stop on SIGTERM exits 0, not by re-raising the signal

        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.started and ready is not None:
                write_text_atomic(ready, json.dumps({"url": url, "port": port, "pid": os.getpid(),
                                                     "api_version": API_VERSION, "version": __version__}))

    server = _Server(config)
    if args.parent_pid is not None:
        threading.Thread(target=_stop_with_parent, args=(server, args.parent_pid), daemon=True,
                         name="logsam-parent-watch").start()
    print(f"logsam serve: listening on {url} (API {API_VERSION}); stop with Ctrl+C.", file=sys.stderr, flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        if ready is not None:
            with contextlib.suppress(FileNotFoundError):
                ready.unlink()
    if _is_the_process():
        # Everything of ours is cleaned up; the native teardown of loaded models (torch, OpenMP) would
        # take seconds more, which a process manager (Slicer's, on exit) should not wait for.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def _stop_with_parent(server, pid: int, interval_s: float = 1.0) -> None:
    """Ask the server to stop once ``pid`` has ended (its owner crashed or quit without stopping it)."""
    while not server.should_exit:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            server.should_exit = True
            return
        except PermissionError:
            pass  # alive, owned by someone else
        time.sleep(interval_s)


def _is_the_process() -> bool:
    """Was this process started as the `logsam` command (not `main()` called from other Python code)?"""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return (spec is not None and spec.name == "LoGSAMLib.cli.__main__") or Path(sys.argv[0]).name == "logsam"
