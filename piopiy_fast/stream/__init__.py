"""The Piopiy stream without I/O: what it says, how a call reads it, what we answer.

- :mod:`.wire`: the vocabulary (listen modes, rates, layouts, channel names) and the
  messages sent on the stream; light enough for the SDK.
- :mod:`.events`: text frames, and what each source says of a call's format.
- :mod:`.layout`: what the stream itself says of its format (byte rate, samples).
- :mod:`.call`: one call as a state machine, frames and text in; decisions, audio and
  events out (``CallCore``).
- :mod:`.replies`: reply audio batched into the messages the platform plays well.

Nothing here opens a socket or runs an event loop: the receiver
(:mod:`piopiy_fast.receiver`) and the Pipecat serializer are the shells around it,
and the tests drive it with bytes.
"""
