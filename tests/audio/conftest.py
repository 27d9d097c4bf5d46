# Some tests here import the compiled modules directly; the core raises the package's
# errors once piopiy_fast.audio, its only importer, has handed them down.
import piopiy_fast.audio  # noqa: F401
