"""Call analytics at the core's cost: voice activity decided as each frame is
received, speech segments on the call's timeline, and the conversation metrics call
analytics services report (talk time, overlap, interruptions, silences, loudness).

* :class:`VadSettings`: the native detector's settings; :func:`speech_segments` runs
  it over arrays.
* :class:`ConversationMetrics`: the metrics from segments, without I/O.
* :class:`CallAnalytics` / :class:`AnalyticsSettings`: a live call's analytics
  (``StreamServer(analytics=...)``, then ``call.analytics``).
* :func:`utterances` / :func:`speech_only`: readers that yield speech segments or
  skip silence, on the timeline.
* :mod:`.references`: WebRTC's and Silero's detectors over the same audio.
"""

from .call import AnalyticsSettings, CallAnalytics, TurnEvent, analyze
from .detector import VadSettings, speech_frames, speech_segments
from .metrics import ChannelLevels, ConversationMetrics, Interruption, Segment, dbfs
from .speech import Utterance, speech_only, utterances

__all__ = [
    "AnalyticsSettings", "CallAnalytics", "ChannelLevels", "ConversationMetrics",
    "Interruption", "Segment", "TurnEvent", "Utterance", "VadSettings", "analyze", "dbfs",
    "speech_frames", "speech_only", "speech_segments", "utterances",
]
