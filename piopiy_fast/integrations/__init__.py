"""Bridges to other frameworks, each behind its own extra (``pip install piopiy-fast[pipecat]``).

Nothing here is imported by the rest of the package.
"""
