"""Piopiy's side of a stream, for tests, demos and load: ``Simulator`` sends calls
(start event, then paced L16 frames) to any receiver; ``synthetic`` makes speech-like
audio."""
