"""GET /openapi.json and /docs."""

import re


def test_openapi_document_describes_the_api(offline_client):
    doc = offline_client.get("/openapi.json").json
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {"/predict", "/health", "/version"}
    predict = doc["paths"]["/predict"]["post"]
    assert "multipart/form-data" in predict["requestBody"]["content"]
    assert {"200", "400", "413", "415", "502", "503", "504", "507"} <= set(predict["responses"])
    # The API needs a personal token (python -m app.accounts.users token, or the API tokens page).
    assert predict["security"] == [{"bearer": []}] and {"401", "422"} <= set(predict["responses"])
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    # Every $ref resolves.
    schemas = doc["components"]["schemas"]
    for ref in re.findall(r"#/components/schemas/(\w+)", str(doc)):
        assert ref in schemas


def test_docs_page_is_self_contained(offline_client):
    resp = offline_client.get("/docs")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert "/predict" in html and "Prediction" in html and "/openapi.json" in html
    assert not re.search(r'(src|href)="(https?:)?//', html)


def test_prediction_schema_is_the_shared_definition(offline_client):
    from serving.schema import app_prediction

    doc = offline_client.get("/openapi.json").json
    assert doc["components"]["schemas"]["Prediction"] == app_prediction()
