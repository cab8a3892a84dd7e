"""training/torch_checkpoint.py: PyTorch state dicts read without PyTorch, and nothing else run."""

from __future__ import annotations

import io
import os
import pickle
import struct
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

from training.torch_checkpoint import CheckpointError, read_legacy_state_dict

MAGIC = 0x1950A86A20F9469CFC6C
SYS_INFO = {"protocol_version": 1001, "little_endian": True,
            "type_sizes": {"short": 2, "int": 4, "long": 4}}


@pytest.fixture
def fake_torch(monkeypatch):
    """Stand-ins for the torch globals, so that this test can *write* checkpoints as torch
    does (pickle names a global by module and name; the reader never imports them)."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    class LongStorage:
        pass

    def _rebuild_tensor_v2(*args):
        raise AssertionError("only pickled, never called")

    for obj, module in ((FloatStorage, "torch"), (LongStorage, "torch"),
                        (_rebuild_tensor_v2, "torch._utils")):
        obj.__module__, obj.__qualname__ = module, obj.__name__
    torch.FloatStorage, torch.LongStorage, torch._utils = FloatStorage, LongStorage, utils
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


class _Storage:
    def __init__(self, key: str, kind, values: np.ndarray):
        self.key, self.kind, self.values = key, kind, values


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, {})

    def __reduce__(self):
        return sys.modules["torch._utils"]._rebuild_tensor_v2, self.args


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", obj.kind, obj.key, "cpu", obj.values.size)
        return None


def _state(torch) -> tuple[dict, list[_Storage]]:
    """One float storage 0..5 shared by a transposed view and an offset, strided view,
    and a long scalar (BatchNorm's counter) in a storage of its own."""
    floats = _Storage("0", torch.FloatStorage, np.arange(6, dtype="<f4"))
    longs = _Storage("1", torch.LongStorage, np.array([7], dtype="<i8"))
    from collections import OrderedDict

    state = OrderedDict(
        transposed=_Tensor(floats, 0, (3, 2), (1, 3)),
        every_other=_Tensor(floats, 1, (2,), (2,)),
        counter=_Tensor(longs, 0, (), ()),
    )
    return state, [floats, longs]


def _pickled(obj) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def write_legacy(path: Path, state, storages: list[_Storage]) -> Path:
    with path.open("wb") as fh:
        for header in (MAGIC, 1001, SYS_INFO):
            pickle.dump(header, fh, protocol=2)
        fh.write(_pickled(state))
        pickle.dump([s.key for s in storages], fh, protocol=2)
        for s in storages:
            fh.write(struct.pack("<q", s.values.size) + s.values.tobytes())
    return path


def write_zip(path: Path, state, storages: list[_Storage]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", _pickled(state))
        for s in storages:
            zf.writestr(f"archive/data/{s.key}", s.values.tobytes())
    return path


EXPECTED = {
    "transposed": np.array([[0, 3], [1, 4], [2, 5]], np.float32),
    "every_other": np.array([1, 3], np.float32),
    "counter": np.array(7, np.int64),
}


@pytest.mark.parametrize("writer", [write_legacy, write_zip], ids=["legacy", "zip"])
def test_strides_offsets_and_dtypes_are_honoured(tmp_path, fake_torch, writer):
    state, storages = _state(fake_torch)
    got = read_legacy_state_dict(writer(tmp_path / "x.pth", state, storages))
    assert list(got) == ["transposed", "every_other", "counter"]
    for name, want in EXPECTED.items():
        assert got[name].dtype == want.dtype, name
        np.testing.assert_array_equal(got[name], want, err_msg=name)
    assert got["transposed"].flags.c_contiguous


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_naming_another_global_is_refused_not_run(tmp_path, fake_torch):
    marker = tmp_path / "ran"
    state, storages = _state(fake_torch)
    state["evil"] = _Payload(marker)
    path = write_legacy(tmp_path / "evil.pth", state, storages)
    with pytest.raises(CheckpointError, match="refused global (posix|os).system"):
        read_legacy_state_dict(path)
    assert not marker.exists()


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "x.pth"
    path.write_bytes(b"\x89PNG\r\n\x1a\n not a pickle")
    with pytest.raises(CheckpointError):
        read_legacy_state_dict(path)


def test_a_truncated_storage_is_reported(tmp_path, fake_torch):
    state, storages = _state(fake_torch)
    path = write_legacy(tmp_path / "x.pth", state, storages)
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(CheckpointError, match="truncated"):
        read_legacy_state_dict(path)


def test_the_efficientnet_lite0_wheel_checkpoint():
    from training.pretrained import PretrainedWeightsError, weights_path

    try:
        path = weights_path()
    except PretrainedWeightsError as exc:
        pytest.skip(str(exc))
    state = read_legacy_state_dict(path)
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280)
    np.testing.assert_allclose(
        state["_conv_stem.weight"].ravel()[:3], [-1.1103361, -1.3087704, -0.01015691], rtol=1e-6
    )
    np.testing.assert_allclose(state["_bn0.running_var"][:2], [1.6314286, 70.371574], rtol=1e-6)
    assert state["_blocks.0._bn1.num_batches_tracked"].dtype == np.int64
    n = sum(v.size for k, v in state.items() if not k.endswith("num_batches_tracked"))
    assert n == 4_694_024  # 4.65 M parameters + BatchNorm statistics
