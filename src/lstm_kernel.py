"""The project's own CPU LSTM kernel (src/kernels/lstm_cpu.cc) as a MindSpore Custom "aot" operator.

MindSpore's fused CPU LSTM and LSTMGrad kernels keep private re-ordered copies of the weights (and of their
gradients) per call site and per compiled graph, about 1.5 GB for DeepSpeech2's 5 layers x 2 directions, and
their training workspace holds ~52 floats x hidden per frame and clip. This kernel keeps what its backward pass
needs: the activated gates per frame (4 floats x hidden per direction); its backward rebuilds the cell states
and outputs from them.

The shared library is compiled on first use with the system's C++ compiler (`-march=native`: it is built for
the CPU it runs on) into a cache directory keyed by the source, the compiler command (MindSpore's library
folder included) and the CPU flags; set DS2_KERNEL_CACHE to move it. Where it cannot be built (no compiler, no
oneDNN library in the MindSpore wheel, MindSpore's MS_CUSTOM_AOT_WHITE_LIST pointing elsewhere) `library()`
returns None with one warning that says why, and the network falls back to MindSpore's kernels
(ModelConfig.lstm_kernel).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

from mindspore import nn, ops

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).resolve().parent / "kernels" / "lstm_cpu.cc"
FLAGS = ("-O3", "-march=native", "-ffast-math", "-fopenmp", "-fPIC", "-shared", "-std=c++17")
DNNL = "libdnnl.so.3"
WHITE_LIST = "MS_CUSTOM_AOT_WHITE_LIST"


class KernelUnavailable(RuntimeError):
    """The kernel cannot be built or loaded here; the message says why."""


def cpu_flags() -> str:
    """The CPU's feature flags as /proc/cpuinfo lists them ("" where it cannot be read)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _mindspore_lib() -> tuple[Path, str]:
    import mindspore

    return Path(mindspore.__file__).resolve().parent / "lib", mindspore.__version__


def cache_dir() -> Path:
    base = os.environ.get("DS2_KERNEL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "deepspeech2-mindspore", "kernels"
    )
    return Path(base)


def build(out_dir: Path | None = None, extra_flags: tuple = (), source: Path = SOURCE) -> Path:
    """Compile the kernel (or find it already compiled) -> the shared library's path. Raises KernelUnavailable.

    extra_flags: appended to FLAGS (e.g. "-march=x86-64-v3" builds the AVX2 variant on an AVX-512 host).
    source: another version of lstm_cpu.cc (bench/lstm_kernel_speed.py builds an earlier commit's beside it).
    """
    lib_dir, version = _mindspore_lib()
    if not (lib_dir / DNNL).exists():
        raise KernelUnavailable(f"MindSpore {version} ships no {DNNL} in {lib_dir}")
    wanted = os.environ.get("CXX") or "g++"
    compiler = shutil.which(wanted) or (None if os.environ.get("CXX") else shutil.which("c++"))
    if not compiler:
        raise KernelUnavailable(f"no C++ compiler {wanted!r} found (install g++, e.g. `apt-get install g++`)")
    text = Path(source).read_bytes()
    command = [compiler, *FLAGS, *extra_flags, str(source), f"-L{lib_dir}", f"-l:{DNNL}", f"-Wl,-rpath,{lib_dir}"]
    key = hashlib.sha256(b"\0".join([text, " ".join(command).encode(), cpu_flags().encode()])).hexdigest()[:16]
    target_dir = (out_dir or cache_dir()) / key
    target = target_dir / "lstm_cpu.so"
    if target.exists():
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    # Concurrent builders (msrun workers) each write their own file and move it into place atomically.
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target_dir)
    os.close(fd)
    try:
        done = subprocess.run([*command, "-o", tmp], capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise KernelUnavailable(f"compiling {Path(source).name} failed ({compiler}): {last}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


@lru_cache(maxsize=1)
def library() -> str | None:
    """The compiled kernel's path, allowed for MindSpore's Custom ops; None (one warning) where unavailable."""
    try:
        path = build()
        allowed = os.environ.get(WHITE_LIST)
        if allowed is None:
            os.environ[WHITE_LIST] = str(path.parent)
        elif not str(path.resolve()).startswith(os.path.realpath(allowed)):
            raise KernelUnavailable(f"{WHITE_LIST}={allowed} does not hold {path}")
        return str(path)
    except (KernelUnavailable, OSError, subprocess.SubprocessError) as err:
        logger.warning("the project's LSTM kernel is not available, using MindSpore's (more memory): %s", err)
        return None


def _forward_shapes(x, w_ih, w_hh, b):
    t, n, h = x[0], x[1], w_hh[1]
    return (t, n, h), (t, n, 4 * h)


def _backward_shapes(x, w_ih, w_hh, gates, dy):
    return x, w_ih, w_hh, (w_hh[0],)


def _forward_types(x, *_):
    return x, x


def _backward_types(x, *_):
    return x, x, x, x


class ProjectLSTM(nn.Cell):
    """One LSTM direction from a zero state on the kernel at `path` (a built library, see library()).

    construct(x (T, N, I), w_ih (4H, I), w_hh (4H, H), b (4H)) -> (y (T, N, H), gates (T, N, 4H)); the
    backward reads the kept gates only (it rebuilds the cell states and outputs) and takes gradients through y.
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self.forward_op = ops.Custom(f"{path}:LstmForward", _forward_shapes, _forward_types, func_type="aot")
        self.backward_op = ops.Custom(f"{path}:LstmBackward", _backward_shapes, _backward_types, func_type="aot")

    def construct(self, x, w_ih, w_hh, b):
        return self.forward_op(x, w_ih, w_hh, b)

    def bprop(self, x, w_ih, w_hh, b, out, dout):
        dx, dw_ih, dw_hh, db = self.backward_op(x, w_ih, w_hh, out[1], dout[0])
        return dx, dw_ih, dw_hh, db
