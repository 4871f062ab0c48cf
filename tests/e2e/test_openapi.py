"""docs/openapi.yaml: a valid OpenAPI 3 document whose paths and methods are exactly the
route table the binary serves (`modeld --list-routes`), and whose schemas the live
answers satisfy.

Debian 12 packages no OpenAPI validator (no python3-openapi-spec-validator), so the
structure is checked here: the required fields of the OpenAPI 3.0 objects, response
codes, path templating against declared path parameters, every $ref resolving, unique
operationIds, and each schema a valid JSON Schema (python3-jsonschema)."""

import copy
import re
import struct

import jsonschema
import pytest
import yaml

from conftest import REPO_ROOT, Daemon, run_modeld, write_toy_model

SPEC_PATH = REPO_ROOT / "docs" / "openapi.yaml"
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture(scope="module")
def spec():
    with open(SPEC_PATH) as f:
        return yaml.safe_load(f)


def route_table():
    """{(METHOD, path)} from the binary, placeholders named as in the OpenAPI file."""
    out = run_modeld(["--list-routes"])
    assert out.returncode == 0, out.stderr
    routes = set()
    for line in out.stdout.splitlines():
        method, path = line.split(" ", 1)
        routes.add((method, path.replace("{m}", "{model}").replace("{v}", "{version}")))
    return routes


def test_paths_are_the_route_table(spec):
    documented = {(m.upper(), p) for p, item in spec["paths"].items() for m in item if m in METHODS}
    routes = route_table()
    assert len(routes) >= 25
    assert routes - documented == set(), f"routes missing from docs/openapi.yaml: {sorted(routes - documented)}"
    assert documented - routes == set(), f"documented but not served: {sorted(documented - routes)}"


def resolve(spec, ref):
    assert ref.startswith("#/"), f"only local $refs are used: {ref}"
    node = spec
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, f"$ref {ref} does not resolve"
        node = node[part]
    return node


def deref(spec, node):
    return resolve(spec, node["$ref"]) if isinstance(node, dict) and "$ref" in node else node


def walk_refs(spec, node, seen):
    if isinstance(node, dict):
        if "$ref" in node:
            seen.add(node["$ref"])
            resolve(spec, node["$ref"])
        for v in node.values():
            walk_refs(spec, v, seen)
    elif isinstance(node, list):
        for v in node:
            walk_refs(spec, v, seen)


def test_valid_openapi_3_structure(spec):
    assert re.fullmatch(r"3\.0\.\d+", spec.get("openapi", "")), spec.get("openapi")
    assert spec["info"]["title"] and spec["info"]["version"]
    assert isinstance(spec["paths"], dict) and spec["paths"]
    refs = set()
    walk_refs(spec, spec, refs)
    schemas = spec["components"]["schemas"]
    # every schema and parameter defined is used somewhere
    for name in schemas:
        assert f"#/components/schemas/{name}" in refs, f"schema {name} is never referenced"
    op_ids = []
    for path, item in spec["paths"].items():
        assert path.startswith("/"), path
        templated = set(re.findall(r"\{([^}]+)\}", path))
        for method, op in item.items():
            assert method in METHODS, f"{path}: unknown key {method}"
            assert op.get("operationId"), f"{method} {path}: no operationId"
            op_ids.append(op["operationId"])
            params = [deref(spec, p) for p in op.get("parameters", [])]
            for p in params:
                assert p["in"] in {"path", "query", "header", "cookie"} and p["name"], p
                assert "schema" in p or "content" in p, p
            declared = {p["name"] for p in params if p["in"] == "path"}
            assert declared == templated, f"{method} {path}: path parameters {declared} vs template {templated}"
            assert all(p["required"] is True for p in params if p["in"] == "path")
            responses = op.get("responses")
            assert isinstance(responses, dict) and responses, f"{method} {path}: no responses"
            for code, resp in responses.items():
                assert code == "default" or re.fullmatch(r"[1-5]\d\d", str(code)), f"{method} {path}: code {code}"
                resp = deref(spec, resp)
                assert resp.get("description"), f"{method} {path} {code}: no description"
                for media in resp.get("content", {}).values():
                    assert "schema" in media
            if "requestBody" in op:
                assert deref(spec, op["requestBody"])["content"]
            for sec in op.get("security", []):
                for scheme in sec:
                    assert scheme in spec["components"]["securitySchemes"]
    assert len(op_ids) == len(set(op_ids)), "operationIds are not unique"
    for name, schema in schemas.items():
        jsonschema.Draft4Validator.check_schema(to_json_schema(schema))


def to_json_schema(node):
    """OpenAPI 3.0 schema -> JSON Schema: `nullable: true` becomes a null alternative."""
    if isinstance(node, list):
        return [to_json_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "oneOf" in out:
            out["oneOf"] = out["oneOf"] + [{"type": "null"}]
    return out


def check_answer(spec, schema_name, body):
    doc = to_json_schema(copy.deepcopy(spec))
    schema = {"$ref": f"#/components/schemas/{schema_name}"}
    resolver = jsonschema.RefResolver("", doc)
    jsonschema.Draft4Validator(schema, resolver=resolver).validate(body)


def test_live_answers_match_the_schemas(spec, tmp_path):
    """The shapes documented are the shapes served."""
    write_toy_model(tmp_path)
    with Daemon(tmp_path, config={"admin_allow_unauthenticated_loopback": True}) as d:
        rows = [[1, 2, 3], [4, 5, 6]]
        cases = [
            ("Status", d.request("GET", "/healthz")),
            ("Readiness", d.request("GET", "/readyz")),
            ("ModelList", d.request("GET", "/v1/models")),
            ("ModelMetadata", d.request("GET", "/v1/models/toy")),
            ("PredictResponse", d.predict("toy", rows)),
            ("PredictResponse", d.request("POST", "/v1/models/toy:predict", {"inputs": {"age": [1], "income": [2], "score": [3]}})),
            ("Error", d.request("GET", "/v1/models/nope")),
            ("RepositoryIndex", d.request("POST", "/v2/repository/index")),
            ("AdminModelState", d.request("POST", "/v2/repository/models/toy/load")),
            ("V2ServerMetadata", d.request("GET", "/v2")),
            ("V2ModelMetadata", d.request("GET", "/v2/models/toy")),
            ("V2InferResponse", d.request("POST", "/v2/models/toy/infer", {
                "id": "x", "inputs": [{"name": "input", "shape": [2, 3], "datatype": "FP32", "data": rows}]})),
            ("V2Stats", d.request("GET", "/v2/models/toy/stats")),
            ("RankResponse", d.request("POST", "/v1/models/toy:rank", {
                "query": {"age": 1}, "candidates": [{"id": "a", "income": 2, "score": 3}, {"id": 7, "income": 5, "score": 1}]})),
            ("ScoreAucResponse", d.request("POST", "/v1/score-auc", {"scores": [0.1, 0.9, 0.4], "labels": [0, 1, 1]})),
            ("ScoreAucResponse", d.request("POST", "/v1/models/toy:score-auc", {"instances": rows, "labels": [0, 1]})),
            ("V2Error", d.request("GET", "/v2/models/nope")),
            ("V2Error", d.request("POST", "/v2/models/toy/infer", {"inputs": []})),
        ]
        for name, (st, _h, body) in cases:
            assert isinstance(body, (dict, list)), (name, st, body)
            check_answer(spec, name, body)
        # an invalid answer is refused, so the check above can fail
        with pytest.raises(jsonschema.ValidationError):
            check_answer(spec, "V2Error", {"error": {"code": "x", "message": "y"}})
        raw = struct.pack("<3f", 1, 2, 3)
        head = b'{"inputs":[{"name":"input","shape":[1,3],"datatype":"FP32","parameters":{"binary_data_size":12}}],' \
               b'"outputs":[{"name":"value","parameters":{"binary_data":true}}]}'
        st, h, body = d.request("POST", "/v2/models/toy/infer", head + raw,
                                headers={"Inference-Header-Content-Length": str(len(head))}, raw=True)
        assert st == 200
        import json
        check_answer(spec, "V2InferResponse", json.loads(body[:int(h["Inference-Header-Content-Length"])]))
