"""Export to MindIR / ONNX, verification of the exported file against the checkpoint, and loading it back.

Exported graphs have static shapes: features (batch, 1, 161, frames) and lengths (batch,), so clips shorter
than `frames` are zero-padded and masked exactly as in training; longer ones are cut into segments by the
caller (transcribe.py). Outputs: probabilities (batch, T', 29) and output lengths (batch,).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from src.atomic import atomic_write

logger = logging.getLogger(__name__)

FORMATS = {"MINDIR": ".mindir", "ONNX": ".onnx"}


def example_inputs(batch_size: int, bins: int, frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic batch whose clips have different lengths (so the masks are exercised by verification)."""
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((batch_size, 1, bins, frames)).astype(np.float32)
    lengths = np.linspace(frames, max(1, frames // 3), batch_size).astype(np.int32)
    for i, n in enumerate(lengths):
        features[i, :, :, n:] = 0
    return features, lengths


def export_file(predict_cell, features: np.ndarray, lengths: np.ndarray, file_name: str, file_format: str) -> Path:
    """Write the exported model; returns the path with its suffix."""
    import mindspore as ms

    fmt = file_format.upper()
    if fmt not in FORMATS:
        raise ValueError(f"file_format must be one of {sorted(FORMATS)}, got {file_format!r}")
    path = Path(file_name)
    if path.suffix.lower() == FORMATS[fmt]:
        path = path.with_suffix("")
    out = path.with_name(path.name + FORMATS[fmt])

    def produce(tmp: Path) -> None:  # MindSpore appends the suffix itself
        ms.export(
            predict_cell, ms.Tensor(features), ms.Tensor(lengths), file_name=str(tmp.with_suffix("")), file_format=fmt
        )

    return atomic_write(out, produce, keep_suffix=True)


def _first(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


class ExportedModel:
    """Runs an exported .mindir (MindSpore GraphCell) or .onnx (onnxruntime) file with numpy in and out."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"exported model not found: {self.path}")
        suffix = self.path.suffix.lower()
        if suffix not in (".onnx", ".mindir"):
            raise ValueError(f"{self.path}: expected a .mindir or .onnx file")
        try:
            self._load(suffix)
        except Exception as err:  # noqa: BLE001 - protobuf/onnxruntime/MindSpore each raise their own types
            raise ValueError(
                f"{self.path}: not a loadable {suffix} model (corrupt or truncated?): {_first(err)}"
            ) from err

    def _load(self, suffix: str) -> None:
        if suffix == ".onnx":
            import onnxruntime as ort

            self.session = ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
            inputs = self.session.get_inputs()
            self.input_names = [i.name for i in inputs]
            self.input_shape = tuple(inputs[0].shape)
            self.graph = None
        else:
            import mindspore as ms

            graph = ms.load(str(self.path))
            self.graph = ms.nn.GraphCell(graph)
            self.session = None
            self.input_shape = None

    def __call__(self, features: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.session is not None:
            feeds = {self.input_names[0]: features.astype(np.float32), self.input_names[1]: lengths.astype(np.int32)}
            probs, out_lengths = self.session.run(None, feeds)
            return probs, out_lengths
        import mindspore as ms

        probs, out_lengths = self.graph(ms.Tensor(features.astype(np.float32)), ms.Tensor(lengths.astype(np.int32)))
        return probs.asnumpy(), out_lengths.asnumpy()


def verify_export(path: Path, predict_cell, features: np.ndarray, lengths: np.ndarray, tol: float = 1e-4) -> float:
    """Max |difference| between the exported file's and the checkpoint's probabilities on the valid frames.

    Raises:
        RuntimeError: the difference exceeds `tol`, or the output lengths differ.
    """
    import mindspore as ms

    ref_probs, ref_lengths = predict_cell(ms.Tensor(features), ms.Tensor(lengths))
    ref_probs, ref_lengths = ref_probs.asnumpy(), ref_lengths.asnumpy()
    probs, out_lengths = ExportedModel(path)(features, lengths)
    if not np.array_equal(np.asarray(out_lengths), ref_lengths):
        raise RuntimeError(f"{path}: output lengths {out_lengths} differ from the checkpoint's {ref_lengths}")
    diff = max(float(np.abs(probs[i, :n] - ref_probs[i, :n]).max()) for i, n in enumerate(ref_lengths))
    if not diff <= tol:
        raise RuntimeError(f"{path}: outputs differ from the checkpoint's by {diff:.3g} (> {tol})")
    return diff
