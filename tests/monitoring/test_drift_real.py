"""Data drift on real X-rays (../shared/data; skipped when absent): what must and must not
be called drift, each with the false-alarm rate of the same test measured over repeated
same-distribution samples of the reference (printed, and bounded)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from monitoring.drift import OVERALL, Window, compare, false_alarm_rate
from monitoring.features import DriftSpace, image_statistics

# The test runs at alpha = 0.05; 40 repeats put a calibrated test's measured rate above
# 0.15 with probability < 1%.
FAR_BOUND = 0.15


def _windows(real, ref_mask=None):
    _, tr_net, tr_st, tr_src, tr_pat = real[0]["train"]
    mask = np.ones(len(tr_src), bool) if ref_mask is None else ref_mask
    space = DriftSpace.fit(tr_net[mask], tr_st[mask], components=5)
    ref = Window(space.transform(tr_net[mask], tr_st[mask]), tr_src[mask], tr_pat[mask])
    return space, ref


def _far(ref: Window, n: int, label: str) -> float:
    far = false_alarm_rate(ref, n, repeats=40)
    print(f"{label}: false-alarm rate over 40 same-distribution samples of {n}: {far:.3f}")
    assert far <= FAR_BOUND
    return far


@pytest.mark.slow
def test_val_splits_against_training_data_show_no_drift(real_features):
    real, _ = real_features
    space, ref = _windows(real_features)
    _, v_net, v_st, v_src, v_pat = real["val"]
    cur = Window(space.transform(v_net, v_st), v_src, v_pat)
    results = compare(ref, cur, space.names())
    print({r.group: (r.n, r.p_value, r.drift) for r in results})
    assert [r.group for r in results if r.drift] == []
    assert any(r.group == OVERALL and r.judged for r in results)
    _far(ref, len(v_src), "val vs train")


@pytest.mark.slow
@pytest.mark.parametrize("source", ["nih-adult-normal", "hannover-covid", "covid19-3class"])
def test_one_source_against_the_others_shows_drift(real_features, source):
    real, _ = real_features
    tr_src = real["train"][3]
    space, ref = _windows(real_features, ref_mask=tr_src != source)
    parts = [real[s] for s in ("train", "val")]
    keep = [p[3] == source for p in parts]
    net = np.concatenate([p[1][k] for p, k in zip(parts, keep, strict=True)])
    st = np.concatenate([p[2][k] for p, k in zip(parts, keep, strict=True)])
    pat = np.concatenate([p[4][k] for p, k in zip(parts, keep, strict=True)])
    cur = Window(space.transform(net, st), np.array([source] * len(pat)), pat)
    (overall,) = compare(ref, cur, space.names())
    print(source, overall)
    assert overall.drift and overall.p_value < 0.01
    assert overall.moved, "a drifted window names the features that moved"
    _far(ref, len(pat), f"{source} vs the others")


def _rotated(a):
    return np.asarray(Image.fromarray(a).rotate(20, resample=Image.Resampling.BILINEAR))


def _padded(a):
    small = Image.fromarray(a).resize((150, 150), Image.Resampling.BILINEAR)
    canvas = Image.new("L", a.shape[::-1], 0)
    canvas.paste(small, (37, 37))
    return np.asarray(canvas)


_NOISE = np.random.default_rng(0)


def _noisy(a, rng=_NOISE):
    return np.clip(a + rng.normal(0, 20, a.shape), 0, 255).astype(np.uint8)


@pytest.mark.slow
@pytest.mark.parametrize("name,change", [("rotated", _rotated), ("inverted", lambda a: 255 - a),
                                         ("noisy", _noisy), ("resized-padded", _padded)])
def test_altered_xrays_show_drift(real_features, name, change):
    real, net = real_features
    space, ref = _windows(real_features)
    v_img, _, _, v_src, v_pat = real["val"]
    # 40 altered films from the val splits: a few days of one site.
    pick = np.random.default_rng(3).choice(len(v_img), 40, replace=False)
    images = np.stack([change(a) for a in v_img[pick]])
    cur = Window(space.transform(net(images), image_statistics(images)),
                 np.array(["site-a"] * len(pick)), v_pat[pick])
    (overall,) = compare(ref, cur, space.names())
    print(name, overall.p_value, [m["feature"] for m in overall.moved][:5])
    assert overall.drift
    # The same 40 films unaltered are not drift: the change is what is detected.
    plain = Window(space.transform(real["val"][1][pick], real["val"][2][pick]),
                   cur.groups, cur.clusters)
    assert not compare(ref, plain, space.names())[0].drift
    _far(ref, 40, f"{name} (40 films)")
