"""The OpenAPI document describes every answer, so a client can be generated from it."""

from fastapi.testclient import TestClient

from heimdex_pipeline.serve.app import create_app
from heimdex_pipeline.settings import load_settings


def test_every_operation_documents_its_answer_and_its_refusals(tmp_path):
    app = create_app(load_settings({"HEIMDEX_HOME": str(tmp_path)}))
    document = TestClient(app).get("/openapi.json").json()
    operations = [(m, p, op) for p, ops in document["paths"].items() for m, op in ops.items()]
    assert {(m.upper(), p) for m, p, _ in operations} == {
        ("GET", "/health"),
        ("GET", "/api/search"),
        ("POST", "/api/search/image"),
        ("GET", "/api/videos"),
        ("POST", "/api/videos"),
        ("GET", "/api/videos/{video_id}"),
        ("DELETE", "/api/videos/{video_id}"),
        ("POST", "/api/search/face"),
        ("GET", "/api/people"),
        ("GET", "/api/people/{person_id}"),
        ("PUT", "/api/people/{person_id}/name"),
    }
    schemas = document["components"]["schemas"]
    for method, path, operation in operations:
        success = next(code for code in operation["responses"] if code.startswith("2"))
        schema = operation["responses"][success]["content"]["application/json"]["schema"]
        name = schema["$ref"].rsplit("/", 1)[-1]
        assert schemas[name]["properties"], (method, path)
        if path != "/health":
            assert "401" in operation["responses"], f"{method} {path} does not say it needs a token"
    hit = schemas["SearchHit"]["properties"]
    assert {"score", "scene_id", "start_s", "end_s", "thumbnail_url", "video_url"} <= set(hit)
    assert "face" in hit  # the face seen, when a face or a person was asked for
    answer = schemas["SearchAnswer"]["properties"]
    assert answer["hits"]["items"]["$ref"].endswith("/SearchHit")
    assert {"person_id", "name", "faces", "videos", "crop_url"} <= set(
        schemas["PersonSummary"]["properties"]
    )


def test_health_names_the_store_that_is_down_in_its_documented_shape(tmp_path):
    """(Answers are validated against their models: a route returning what its model does not
    describe answers 500, which the serve suite, on real indexed clips, would catch.)"""
    app = create_app(load_settings({"HEIMDEX_HOME": str(tmp_path)}))
    client = TestClient(app)
    health = client.get("/health")
    assert health.status_code == 503  # no catalog yet: said, per store
    assert health.json()["checks"]["catalog"]["status"] == "down"
    # an embedded catalog is made by the first request that needs it
    assert client.get("/api/videos").json()["total"] == 0
