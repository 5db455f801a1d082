"""The server's bearer token: generated on first start, stored with 0600 permissions, compared in constant time."""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from ..errors import LoGSAMError

TOKEN_ENV = "LOGSAM_TOKEN"


def default_token_file() -> Path:
    """``<user config folder>/LoGSAM/server.token`` (``~/.config/LoGSAM`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_config_dir("LoGSAM", appauthor=False)) / "server.token"


def read_token(path: Path) -> str | None:
    """The token stored in ``path``, or None when there is none. A file others can read is refused."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise LoGSAMError(f"The token file {path} can be read by other users; run `chmod 600 {path}` "
                          "(or delete it to get a new token).")
    token = path.read_text(encoding="utf-8").strip()
    if len(token) < 16:
        raise LoGSAMError(f"The token in {path} is shorter than 16 characters; delete the file to get a new one.")
    return token


def ensure_token(path: Path) -> str:
    """The token in ``path``; a new random one is written there (0600, never group/world-readable) if none."""
    token = read_token(path)
    if token is not None:
        return token
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # 0600 from the start, no window
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(token + "\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return token


def token_matches(header: str | None, token: str) -> bool:
    """Does an ``Authorization`` header carry ``Bearer <token>``? Constant-time comparison."""
    if not header:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())
