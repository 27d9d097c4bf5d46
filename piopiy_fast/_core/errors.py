"""The exception classes the compiled core raises, chosen by the layer above it.

The core is the package's bottom layer and imports nothing of the package, not even
its error hierarchy (piopiy_fast.errors). Its modules raise the classes named here;
piopiy_fast.audio, the core's only importer, sets them to the package's own
(PiopiyValidationError, FrameError) with :func:`raise_as` when it is imported. The
core imported on its own raises ValueError, the base of both.
"""
from __future__ import annotations

# A bad argument (a rate, a shape, a policy...).
ValidationError: type[ValueError] = ValueError
# A frame or byte string that does not hold whole samples (or whole sample pairs).
FrameError: type[ValueError] = ValueError


def raise_as(*, validation: type[ValueError], frame: type[ValueError]) -> None:
    """Make the core raise ``validation`` for bad arguments and ``frame`` for bad frames."""
    global ValidationError, FrameError
    ValidationError, FrameError = validation, frame
