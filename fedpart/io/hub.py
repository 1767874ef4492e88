"""Whether the Hugging Face Hub can be reached, asked before ``datasets`` is.

Without a network, ``datasets.load_dataset`` of a hub name retries for about 25 s (five attempts
with exponential backoff, each logged) before it fails. One name lookup of the Hub's host answers
the same question in milliseconds on an offline machine, so ``hf://NAME`` fails at once with what
to do instead.

The lookup is skipped where it would not tell: ``NAME`` is a local folder or no Hub id, Hugging Face's offline
mode is on (``datasets`` then answers from its cache itself), or a proxy is configured (the proxy,
not this machine, resolves the host).
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from fedpart.errors import InputError

DEFAULT_ENDPOINT = "https://huggingface.co"
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
TRUE_VALUES = frozenset({"1", "true", "yes", "on"})
REPO_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")  # NAME or OWNER/NAME: what the Hub could answer for


def hub_host(environ: Mapping[str, str] = os.environ) -> str:
    """The host name of the Hub endpoint (``HF_ENDPOINT``, else huggingface.co)."""
    return urlsplit(environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).hostname or ""


def lookup_decides(name: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether a failed lookup of the Hub's host means ``load_dataset(name)`` cannot succeed."""
    if Path(name).exists() or not REPO_ID.fullmatch(name):
        return False
    if any(environ.get(v, "").strip().lower() in TRUE_VALUES for v in OFFLINE_VARIABLES):
        return False
    return not any(environ.get(v) for v in PROXY_VARIABLES)


def check_hub_reachable(description: str, name: str, environ: Mapping[str, str] = os.environ) -> None:
    """Refuse ``hf://name`` at once when the Hub's host name does not resolve.

    Raises:
        InputError: naming ``description``, the host, and the ways on: a network, a local copy,
            or ``HF_HUB_OFFLINE=1`` for a dataset already in the Hugging Face cache.
    """
    if not lookup_decides(name, environ):
        return
    host = hub_host(environ)
    try:
        socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        reason = error.strerror if isinstance(error, socket.gaierror) and error.strerror else str(error)
        raise InputError(
            f"{description}: cannot reach the Hugging Face Hub ({host}: {reason}); connect to a network, "
            "give a local copy of the data instead (a file, a folder, or hf://FOLDER), or set HF_HUB_OFFLINE=1 "
            "to read a dataset already in the Hugging Face cache"
        ) from error
