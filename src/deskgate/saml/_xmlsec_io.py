"""xmlsec may not open anything: its input callbacks are replaced at import (internal).

xmlsec resolves every URI it meets while verifying or decrypting (a
``xenc:CipherReference``, a ``ds:RetrievalMethod``, a ``ds:Reference`` to
another document) through a list of IO callbacks; by default libxml2's file
and HTTP readers, so ``URI="file:///dev/zero"`` in an attacker's
EncryptedAssertion was read until memory ran out. Same-document references
(``""`` and ``#id``) never go through this list. The SAML core refuses every
other reference before xmlsec sees a document (``_decrypt``,
``_signatures``); this module is the second line, structural: at import it
removes xmlsec's callbacks and registers one that matches nothing, so xmlsec
fails with "no handler" instead of opening a file or a socket, and every URI
it tried is logged and handed to the listeners (tests use them to prove that
no validation path reaches here).

The callback list is global to the process; nothing in deskgate needs xmlsec
to read a URI (signing and decrypting only use same-document references).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import xmlsec

_log = logging.getLogger("deskgate.saml")
_listeners: list[Callable[[str], None]] = []
_lock = threading.Lock()


def _refuse(uri: bytes | str) -> bool:
    """xmlsec's match callback: record the URI, match nothing (so nothing is opened)."""
    text = uri.decode("utf-8", "replace") if isinstance(uri, bytes) else str(uri)
    _log.warning(
        "xmlsec tried to open %r; refused (external references are never followed)", text[:200]
    )
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(text)
    return False


def _never_called(*_args: object) -> None:  # pragma: no cover - _refuse never matches
    raise OSError("external references are never opened")


def install() -> None:
    """Replace xmlsec's IO callbacks by the refusing recorder (idempotent)."""
    xmlsec.cleanup_callbacks()
    xmlsec.register_callbacks(_refuse, _never_called, _never_called, _never_called)


@contextmanager
def recording() -> Iterator[list[str]]:
    """Collect every URI xmlsec tries to open while the block runs (for tests and probes)."""
    seen: list[str] = []
    with _lock:
        _listeners.append(seen.append)
    try:
        yield seen
    finally:
        with _lock:
            _listeners.remove(seen.append)


install()
