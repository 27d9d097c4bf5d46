"""Other voice activity detectors over the same audio, for comparison and as a
neural backend: WebRTC's (``webrtcvad``, or the ``webrtcvad-wheels`` build of it) and
Silero VAD run with onnxruntime (no torch).

Silero's model file comes with the ``silero-vad`` package; installing that package
pulls in torch, which this module does not need: ``pip install onnxruntime`` and
``pip install --no-deps silero-vad`` give what it uses (or pass ``model_path``). The
model takes fixed windows (256 samples at 8 kHz, 512 at 16 kHz) with the 64 samples
(32 at 8 kHz) before each window as context, and carries a recurrent state from one
window to the next.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SileroVad", "silero_model_path", "webrtc_frames"]


def webrtc_frames(samples: np.ndarray, rate: int, frame_ms: int = 10,
                  aggressiveness: int = 2) -> np.ndarray:
    """WebRTC's decision per ``frame_ms`` (10, 20 or 30) frame of int16 ``samples``.

    Raises:
        ImportError: webrtcvad is not installed.
    """
    import webrtcvad  # type: ignore[import-not-found,import-untyped,unused-ignore]

    vad = webrtcvad.Vad(aggressiveness)
    frame = rate * frame_ms // 1000
    data = np.ascontiguousarray(samples, dtype="<i2")
    n = len(data) // frame
    return np.array([vad.is_speech(data[i * frame:(i + 1) * frame].tobytes(), rate)
                     for i in range(n)], dtype=bool)


def silero_model_path() -> Path:
    """The ONNX model the ``silero-vad`` package ships (found without importing it,
    which would import torch).

    Raises:
        FileNotFoundError: the package is not installed.
    """
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the silero-vad package is not installed "
                                "(pip install --no-deps silero-vad)")
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / "silero_vad.onnx"
        if path.is_file():
            return path
    raise FileNotFoundError("the silero-vad package has no data/silero_vad.onnx")


class SileroVad:
    """Silero VAD on onnxruntime, one channel at 8 or 16 kHz.

    Args:
        rate: 8000 or 16000.
        model_path: The ONNX model (the ``silero-vad`` package's when None).
        threshold: Speech probability that makes a window speech.

    Raises:
        ValueError: Another rate.
        ImportError: onnxruntime is not installed.
    """

    def __init__(self, rate: int, model_path: str | Path | None = None, *,
                 threshold: float = 0.5) -> None:
        if rate not in (8000, 16000):
            raise ValueError("Silero VAD runs at 8000 or 16000 Hz")
        import onnxruntime  # type: ignore[import-not-found,import-untyped,unused-ignore]

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session: Any = onnxruntime.InferenceSession(
            str(model_path or silero_model_path()), sess_options=options,
            providers=["CPUExecutionProvider"])
        self.rate = rate
        self.window = 256 if rate == 8000 else 512
        self.context_size = 32 if rate == 8000 else 64
        self.threshold = threshold
        self._sr = np.array(rate, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        """Forget the state (a new stream)."""
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, self.context_size), dtype=np.float32)

    def probability(self, window: np.ndarray) -> float:
        """Speech probability of one window of ``self.window`` int16 samples."""
        x = (np.asarray(window, dtype=np.float32) / 32768.0).reshape(1, -1)
        if x.shape[1] != self.window:
            raise ValueError(f"a window is {self.window} samples at {self.rate} Hz")
        x = np.concatenate([self._context, x], axis=1)
        out, self._state = self._session.run(None, {"input": x, "state": self._state,
                                                    "sr": self._sr})
        self._context = x[:, -self.context_size:]
        return float(out[0][0])

    def windows(self, samples: np.ndarray) -> np.ndarray:
        """The decision per window of ``samples`` (whole windows only)."""
        n = len(samples) // self.window
        return np.array([self.probability(samples[i * self.window:(i + 1) * self.window])
                         >= self.threshold for i in range(n)], dtype=bool)

    def frames(self, samples: np.ndarray, frame_ms: float = 10.0) -> np.ndarray:
        """The decision per ``frame_ms`` frame: that of the window holding the frame's
        middle."""
        per_window = self.windows(samples)
        frame = int(self.rate * frame_ms / 1000)
        n = len(samples) // frame
        middle = (np.arange(n) * frame + frame // 2) // self.window
        inside = middle < len(per_window)
        out = np.zeros(n, dtype=bool)
        out[inside] = per_window[middle[inside]]
        return out
