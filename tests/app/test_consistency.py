"""Every val X-ray gets the same answer through the app as from the model server called
directly and as from the same model loaded in-process."""

import io

import helpers
import pytest
import requests

from serving.preprocessing import preprocess
from serving.wire import build_request

pytestmark = pytest.mark.slow


def test_app_and_model_server_agree_on_every_val_xray(client, model_server, shipped_model):
    paths = helpers.val_xrays()
    if not paths:
        pytest.skip(f"no val X-rays under {helpers.SHARED_DATA}")
    session = requests.Session()
    disagreements = []
    for path in paths:
        data = path.read_bytes()
        direct = session.post(f"{model_server}/invocations",
                              json=build_request([preprocess(data)], heatmap=False), timeout=60)
        assert direct.status_code == 200, direct.text
        expected = direct.json()["predictions"][0]
        in_process = shipped_model.predict_arrays(preprocess(data)[None], heatmap=False)[0]
        assert (in_process["status"], in_process["label"]) == (
            expected["status"], expected["label"]
        ), path
        resp = client.post("/predict", data={"file": (io.BytesIO(data), path.name)},
                           content_type="multipart/form-data")
        assert resp.status_code == 200, (path, resp.json)
        got = resp.json
        want_label = expected["label"] if expected["status"] == "ok" else None
        if (got["status"], got["label"]) != (expected["status"], want_label):
            disagreements.append((str(path.relative_to(helpers.SHARED_DATA)), got["label"],
                                  want_label))
        elif got["status"] == "ok":
            for cls, p in expected["probabilities"].items():
                assert got["probabilities"][cls] == pytest.approx(p, abs=1e-5)
    assert not disagreements, disagreements
