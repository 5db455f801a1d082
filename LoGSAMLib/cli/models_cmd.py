"""`logsam models`: list, download, verify, import and clear model weights."""

from __future__ import annotations

import sys
from typing import Any

from ..errors import LoGSAMError
from .common import add_verbose, print_json, terminal_progress

HELP = "list, download, verify, import and clear model weights"
BAD_STATUSES = ("size-mismatch", "checksum-mismatch", "rejected", "unverified")


def register(subparsers) -> None:
    parser = subparsers.add_parser("models", help=HELP, description=HELP)
    add_verbose(parser)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    p = actions.add_parser("list", help="every model the registry knows, and whether it is cached")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_verbose(p)
    p.set_defaults(func=run_list)

    p = actions.add_parser("download", help="download and verify a model (or 'all')")
    p.add_argument("model_id", metavar="ID", help="model id (see `logsam models list`) or 'all'")
    p.add_argument("--force", action="store_true", help="download again even if the cached copy is intact")
    add_verbose(p)
    p.set_defaults(func=run_download)

    p = actions.add_parser("verify", help="re-hash cached files against their SHA-256 (exit 1 if any is bad)")
    p.add_argument("model_id", metavar="ID", nargs="?", help="only this model (default: all)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_verbose(p)
    p.set_defaults(func=run_verify)

    p = actions.add_parser("path", help="print the verified local path of a model")
    p.add_argument("model_id", metavar="ID")
    p.add_argument("--download", action="store_true", help="download it first if it is missing")
    add_verbose(p)
    p.set_defaults(func=run_path)

    p = actions.add_parser("import", help="copy a hand-carried weight file into the cache (checksum checked)")
    p.add_argument("model_id", metavar="ID")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--name", help="which file of a multi-file model this is (default: FILE's name)")
    p.add_argument("--replace-recorded", action="store_true",
                   help="where no checksum is published and FILE differs from the one recorded earlier, trust "
                        "FILE and replace the recorded checksum (asked on a terminal)")
    add_verbose(p)
    p.set_defaults(func=run_import)

    p = actions.add_parser("clear", help="delete cached model files (one model, or all)")
    p.add_argument("model_id", metavar="ID", nargs="?", help="only this model (default: all)")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add_verbose(p)
    p.set_defaults(func=run_clear)


def _human(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"  # pragma: no cover


def _entry(spec, cached: bool) -> dict[str, Any]:
    """One `models list --json` row: url/sha256 are strings for one-file models, lists for multi-file."""
    urls = [f.url for f in spec.files]
    shas = [f.sha256 for f in spec.files]
    return {
        "id": spec.id, "stage": spec.stage, "title": spec.title, "size": spec.size, "cached": cached,
        "url": urls[0] if spec.single_file else urls, "sha256": shas[0] if spec.single_file else shas,
        "license": spec.license, "citation": spec.citation, "source": spec.source, "origin": spec.origin,
        "files": [{"name": f.name, "url": f.url, "sha256": f.sha256, "size": f.size} for f in spec.files],
    }


def run_list(args) -> int:
    from .. import models

    rows = [_entry(spec, models.is_cached(spec.id)) for spec in models.registry().values()]
    if args.json:
        print_json({"cache": str(models.cache_dir()), "models": rows})
        return 0
    print(f"model cache: {models.cache_dir()}")
    for row in rows:
        state = "cached" if row["cached"] else "-"
        print(f"{row['id']:28} {row['stage']:12} {_human(row['size']):>9}  {state:6}  {row['title']}")
        for file in row["files"]:
            where = file["url"] or (row["source"] or "no URL: import by hand")
            print(f"    {file['name']}: {where}")
            print(f"        sha256: {file['sha256'] or 'null (recorded at first download)'}")
        print(f"    license: {row['license']}")
    return 0


def run_download(args) -> int:
    from .. import models

    if args.model_id == "all":
        ids = [spec.id for spec in models.registry().values() if not spec.source]
    else:
        ids = [models.get_spec(args.model_id).id]
    failures = 0
    for model_id in ids:
        callback, close = terminal_progress()
        try:
            path = models.download(model_id, progress=callback, force=args.force)
        except LoGSAMError as error:
            if len(ids) == 1:
                raise
            print(f"logsam models download: {model_id}: error: {error}", file=sys.stderr)
            failures += 1
            continue
        finally:
            close()
        print(f"{model_id}: {path}")
    return 1 if failures else 0


def run_verify(args) -> int:
    from .. import models

    results = models.verify(args.model_id)
    if args.json:
        print_json([{"id": mid, "file": name, "status": status} for mid, name, status in results])
    else:
        for mid, name, status in results:
            print(f"{mid:28} {name:32} {status}")
    bad = [r for r in results if r[2] in BAD_STATUSES]
    # Asking about one model that is not there is a failure; an uncached model among all is normal.
    missing_one = args.model_id and any(r[2] == "missing" for r in results)
    return 1 if bad or missing_one else 0


def run_path(args) -> int:
    from .. import models

    callback, close = terminal_progress()
    try:
        print(models.model_path(args.model_id, download=args.download, progress=callback))
    finally:
        close()
    return 0


def run_import(args) -> int:
    from .. import models

    try:
        path = models.import_file(args.model_id, args.file, name=args.name, replace_recorded=args.replace_recorded)
    except models.RecordedChecksumMismatch as error:
        if not sys.stdin.isatty():
            raise
        print(error, file=sys.stderr)
        answer = input("Trust this file and replace the recorded checksum? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing imported")
            return 1
        path = models.import_file(args.model_id, args.file, name=args.name, replace_recorded=True)
    print(f"{args.model_id}: {path}")
    return 0


def run_clear(args) -> int:
    from .. import models

    what = f"the cached files of '{models.get_spec(args.model_id).id}'" if args.model_id else "every cached model"
    if not args.yes:
        if not sys.stdin.isatty():
            raise LoGSAMError(f"Refusing to delete {what} without confirmation; add --yes.")
        answer = input(f"Delete {what} in {models.cache_dir()}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1
    removed = models.clear(args.model_id)
    for path in removed:
        print(f"deleted {path}")
    if not removed:
        print("nothing to delete")
    return 0

