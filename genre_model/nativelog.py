"""C++ libraries (LiteRT, TensorFlow) write log lines straight to file descriptor 2, past Python's
logging. :func:`native_stderr_to_log` catches them for a while and hands them to :mod:`logging` at
DEBUG level, so a command's terminal shows only what the command says."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from typing import Iterator


@contextlib.contextmanager
def native_stderr_to_log(source: str, logger: logging.Logger) -> Iterator[None]:
    """Route what is written to file descriptor 2 meanwhile to ``logger.debug("<source>: <line>")``."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode(errors="replace").splitlines():
                if line.strip():
                    logger.debug("%s: %s", source, line.strip())
