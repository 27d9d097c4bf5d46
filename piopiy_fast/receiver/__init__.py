"""The stream receiver: Piopiy's media server connects, the application reads.

``server`` accepts connections (``StreamServer``); each becomes a ``CallStream``
(``call``) whose channels are read through ``channel``; ``events`` reads text frames
and discovers the format; ``auth`` admits or refuses a handshake; ``recorder``
writes WAV files; ``transports`` puts a WebSocket library behind one seam.
Import from the modules (or from ``piopiy_fast``): this package loads nothing itself.
"""
