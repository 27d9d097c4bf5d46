"""Piopiy's side of a stream, for tests, demos and load.

``mod_audio_stream`` and ``peer_simulator`` stream calls as FreeSWITCH's
``mod_audio_stream`` does (both of its WebSocket clients: ``libwsc`` and
``ixwebsocket``, over ``peer_socket``, ``handshake`` and ``wsframes``; its checks in
``ws_uri``; its layouts in ``layouts``); ``conversation`` makes two-party calls with
known turns; ``Simulator`` (``simulator``) is the simple client (a JSON start event,
then paced L16 frames); ``synthetic`` makes speech-like audio."""
