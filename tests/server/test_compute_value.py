"""value:compute on the local server: getInfo-style metadata, collections, and every bad request a 400."""

from __future__ import annotations

import itertools

import pytest
import requests

from eexarray.geometry import Window
from eexarray.server import serve
from eexarray.server.catalog import Catalog
from eexarray.server.compute import ALGORITHMS
from eexarray.server.compute.evaluator import Evaluator
from eexarray.server.compute.info import to_json
from eexarray.server.compute.values import Date, DateRange, Filter, Function, Geometry, Image, Reducer
from eexarray.server.errors import ApiError
from tests.server.test_compute_pixels import GRID, call, catalog, expression, load


@pytest.fixture(scope="module")
def value_server():
    with serve(catalog=catalog()) as running:
        yield running


def value(server, root: dict | None = None, body: dict | None = None, version: str = "v1") -> requests.Response:
    payload = body if body is not None else {"expression": expression(root)}
    return requests.post(f"{server.url}/{version}/projects/p/value:compute", json=payload, timeout=60)


def result(server, root: dict):
    response = value(server, root)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def error(response: requests.Response) -> str:
    assert response.status_code == 400, response.text
    return response.json()["error"]["message"]


STACK = call("ImageCollection.load", id="c/stack")


def test_image_info_has_the_get_info_shape(value_server):
    info = result(value_server, load("c/img"))
    assert info["type"] == "Image" and info["id"] == "c/img" and isinstance(info["version"], int)
    assert [band["id"] for band in info["bands"]] == ["B4", "B3", "B8", "B5"]
    assert info["bands"][0] == {
        "id": "B4",
        "data_type": {"type": "PixelType", "precision": "int", "min": 0, "max": 65535},
        "dimensions": [300, 200],
        "crs": "EPSG:32610",
        "crs_transform": [10.0, 0.0, 500000.0, 0.0, -10.0, 4200000.0],
    }
    assert info["bands"][2]["data_type"] == {"type": "PixelType", "precision": "int", "min": -128, "max": 127}
    assert info["bands"][3]["dimensions"] == [150, 100] and info["bands"][3]["crs_transform"][0] == 20.0
    properties = info["properties"]
    assert properties["CLOUD"] == 7 and properties["system:index"] == "img"
    assert properties["system:time_start"] == 1614556800000
    assert properties["system:footprint"]["type"] == "LinearRing"


def test_computed_image_types_and_default_projection(value_server):
    image = load("c/img")
    ndvi = result(value_server, call("Image.normalizedDifference", input=image, bandNames=["B4", "B3"]))
    assert ndvi["bands"][0]["id"] == "nd"
    assert ndvi["bands"][0]["data_type"] == {"type": "PixelType", "precision": "float"}
    assert "id" not in ndvi and ndvi["properties"] == {}
    total = result(value_server, call("Image.add", image1=image, image2=call("Image.constant", value=1)))
    assert total["bands"][0]["data_type"] == {"type": "PixelType", "precision": "int", "min": 1, "max": 65536}
    median = result(value_server, call("reduce.median", collection=STACK))
    assert [band["id"] for band in median["bands"]] == ["red", "swir"]
    assert median["bands"][0] == {
        "id": "red",
        "data_type": {"type": "PixelType", "precision": "double"},
        "crs": "EPSG:4326",
        "crs_transform": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
    }
    reduced = result(value_server, call("ImageCollection.reduce", collection=STACK, reducer=call("Reducer.max")))
    assert [band["id"] for band in reduced["bands"]] == ["red_max", "swir_max"]


def test_collection_info_size_and_filters(value_server):
    info = result(value_server, STACK)
    assert info["type"] == "ImageCollection" and info["id"] == "c/stack" and info["bands"] == []
    assert [image["properties"]["system:index"] for image in info["features"]] == ["s0", "s1", "s2", "s3", "s4"]
    date_range = call("DateRange", start="2021-01-02", end=call("Date", value=1609718400000))  # to 2021-01-04
    dated = call(
        "Collection.filter",
        collection=STACK,
        filter=call("Filter.dateRangeContains", leftValue=date_range, rightField="system:time_start"),
    )
    assert result(value_server, call("AggregateFeatureCollection.array", collection=dated,
                                     property="system:index")) == ["s1", "s2"]  # fmt: skip
    both = call("Filter.and", filters=[call("Filter.greaterThan", leftField="index", rightValue=0),
                                       call("Filter.not", filter=call("Filter.equals", leftField="index",
                                                                      rightValue=3))])  # fmt: skip
    assert result(value_server, call("Collection.size", collection=call("Collection.filter", collection=STACK,
                                                                        filter=both))) == 3  # fmt: skip
    inside = call("Feature", geometry=call("GeometryConstructors.Point", coordinates=[-122.99, 37.93]))
    far = call("Feature", geometry=call("GeometryConstructors.Polygon", coordinates=[[[10, 10], [11, 10], [11, 11]]]))
    for feature, expected in ((inside, 5), (far, 0)):
        bounded = call("Collection.filter", collection=STACK,
                       filter=call("Filter.intersects", leftField=".all", rightValue=feature))  # fmt: skip
        assert result(value_server, call("Collection.size", collection=bounded)) == expected


def test_first_limit_to_list_and_list_get(value_server):
    newest = call("Collection.limit", collection=STACK, limit=2, key="system:time_start", ascending=False)
    assert [i["properties"]["index"] for i in result(value_server, newest)["features"]] == [4, 3]
    assert result(value_server, call("Collection.first", collection=newest))["properties"]["index"] == 4
    listed = call("Collection.toList", collection=STACK, count=3, offset=1)
    assert result(value_server, call("List.get", list=listed, index=-1))["properties"]["index"] == 3
    sliced = call("List.slice", list=listed, start=0, end=3, step=2)
    assert [i["properties"]["index"] for i in result(value_server, sliced)] == [1, 3]


def test_xee_metadata_calls(value_server):
    columns = call("Collection.reduceColumns", collection=STACK,
                   reducer=call("Reducer.repeat", reducer=call("Reducer.toList"), count=2),
                   selectors=["system:id", "system:time_start"])  # fmt: skip
    listed = {"arrayValue": {"values": [
        call("Collection.size", collection=STACK),
        call("Element.toDictionary", element=STACK),
        call("Dictionary.get", dictionary=columns, key="list"),
    ]}}  # fmt: skip
    size, properties, (ids, times) = result(value_server, listed)
    assert size == 5 and properties == {}
    assert ids == [f"c/stack/s{t}" for t in range(5)]
    assert times == [1609459200000 + t * 86400000 for t in range(5)]
    image = result(value_server, call("Element.toDictionary", element=load("c/img")))
    assert image == {"CLOUD": 7}


def test_map_and_iterate_with_function_definitions(value_server):
    values = {
        "0": call("Collection.iterate", collection={"valueReference": "1"}, first={"valueReference": "2"},
                  function={"functionDefinitionValue": {"argumentNames": ["img", "acc"], "body": "3"}}),
        "1": call("Collection.map", collection=STACK,
                  baseAlgorithm={"functionDefinitionValue": {"argumentNames": ["x"], "body": "4"}}),
        "2": call("Image.select", input=load("c/img"), bandSelectors=["B8"]),
        "3": call("Image.addBands", dstImg={"argumentReference": "acc"}, srcImg={"argumentReference": "img"},
                  names=["red"]),
        "4": call("Image.multiply", image1={"argumentReference": "x"}, image2=call("Image.constant", value=2)),
    }  # fmt: skip
    response = value(value_server, body={"expression": {"result": "0", "values": values}})
    assert response.status_code == 200, response.text
    bands = response.json()["result"]["bands"]
    assert [band["id"] for band in bands] == ["B8", "red", "red_1", "red_2", "red_3", "red_4"]
    assert bands[1]["data_type"] == {"type": "PixelType", "precision": "int", "min": 0, "max": 131070}


def test_other_values(value_server):
    assert result(value_server, call("Date", value="2020-01-02T00:00:00Z")) == {"type": "Date", "value": 1577923200000}
    projection = result(value_server, call("Image.projection", image=call("Image.select", input=load("c/img"),
                                                                          bandSelectors=["B5"])))  # fmt: skip
    assert projection == {"type": "Projection", "crs": "EPSG:32610", "transform": [20.0, 0.0, 500000.0, 0.0, -20.0,
                                                                                    4200000.0]}  # fmt: skip
    assert result(value_server, call("Image.bandNames", image=load("c/img"))) == ["B4", "B3", "B8", "B5"]
    assert result(value_server, {"integerValue": "12345678901234"}) == 12345678901234
    assert result(value_server, {"dictionaryValue": {"values": {"a": {"constantValue": [1]}}}}) == {"a": [1]}


# -- every bad request is a 400 naming the problem ------------------------------------------------
@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({}, "value:compute needs an expression"),
        ({"expression": [1]}, "expression must be an object"),
        ({"expression": {"values": {"0": {"constantValue": 1}}}}, "expression.result"),
        ({"expression": {"result": "1", "values": {"0": {"constantValue": 1}}}}, 'valueReference "1" names no'),
        ({"expression": {"result": "0", "values": {"0": {"valueReference": "0"}}}}, "cycle"),
        ({"expression": {"result": "0", "values": {"0": {"floatValue": 1}}}}, 'unknown field "floatValue"'),
        ({"expression": {"result": "0", "values": {"0": {"constantValue": 1, "integerValue": "2"}}}}, "exactly one"),
        ({"expression": {"result": "0", "values": {"0": {"argumentReference": "x"}}}}, 'argumentReference "x"'),
        ({"expression": {"result": "0", "values": {"0": {"integerValue": "1.5"}}}}, "must be an integer"),
        ({"expression": {"result": "0", "values": {"0": {"bytesValue": "%%"}}}}, "base64"),
        ({"expression": {"result": "0", "values": {"0": {"arrayValue": [1]}}}}, "arrayValue"),
        (
            {"expression": {"result": "0", "values": {"0": {"functionInvocationValue": {"arguments": {}}}}}},
            "exactly one of functionName",
        ),
        ({"expression": expression(call("Image.sobel", image=1))}, 'Unknown algorithm "Image.sobel"'),
        (
            {"expression": expression(call("Image.glcmTexture", image=1))},
            '"Image.glcmTexture" is not implemented by the local Earth Engine server',
        ),
        ({"expression": expression(call("Image.load", id="c/img", bogus=1))}, "unknown argument 'bogus'"),
        ({"expression": expression(call("Image.select", input=load("c/img")))}, "'bandSelectors' (List<Object>)"),
        ({"expression": expression(call("Image.add", image1="text", image2=1))}, "Expected type: Image"),
        ({"expression": expression(load("c/none"))}, "Image asset 'c/none' not found"),
        ({"expression": expression(load("c/stack"))}, "is not an Image"),
        (
            {"expression": expression(call("Image.select", input=load("c/img"), bandSelectors=["B9"]))},
            "Pattern 'B9' did not match any bands",
        ),
        (
            {"expression": expression(call("Image.rename", input=load("c/img"), names=["a", "a", "b", "c"]))},
            "must be unique",
        ),
        (
            {"expression": expression(call("Collection.iterate", collection=STACK, function=1))},
            "Expected type: Algorithm",
        ),
        ({"expression": expression(call("Filter.and", filters=[1]))}, "filters must be a list of Filters"),
        ({"expression": expression(call("Filter.always"))}, "cannot return a Filter"),
        ({"expression": expression(load("c/img")), "region": {}}, 'Unknown name "region"'),
    ],
)
def test_bad_expressions_are_400(value_server, body, text):
    assert text in error(value(value_server, body=body))


def test_malformed_json_and_deep_nesting_are_400(value_server):
    url = f"{value_server.url}/v1/projects/p/value:compute"
    assert "Invalid JSON payload" in error(requests.post(url, data=b"{not json", timeout=30))
    deep = b'{"expression": ' + b"[" * 100000 + b"]" * 100000 + b"}"
    assert "Invalid JSON payload" in error(requests.post(url, data=deep, timeout=30))
    nested: dict = {"constantValue": 1}
    for _ in range(300):
        nested = {"arrayValue": {"values": [nested]}}
    assert "nested more than 200 levels" in error(value(value_server, nested))


JUNK = [
    None, 0, -1, 2.5, 10**30, -1e300, float("nan"), "B4", "", [], [1, "a"], {"a": 1}, True, b"\x00",
    Date(0), DateRange(0, 1), Geometry({"type": "Point", "coordinates": [0, 0]}), Reducer("mean"),
    Filter(lambda e: True, "f"), Function(("x",), None, {}),
]  # fmt: skip


SMALL = GRID.window(Window(0, 2, 0, 3))


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_no_algorithm_fails_with_anything_but_a_400_on_junk_arguments(name):
    """Each argument in turn set to values of every wrong type: a result or a 400, never another exception."""
    evaluator = Evaluator(Catalog.build(entries=catalog()))
    good = _plausible_arguments(evaluator)
    definition = ALGORITHMS[name]
    arguments = {arg.name: good.get(arg.type.split("<")[0], 1) for arg in definition.arguments}
    for argument, junk in itertools.product([a.name for a in definition.arguments], JUNK):
        trial = {**arguments, argument: junk}
        if isinstance(junk, Function) and definition.arguments and argument in ("baseAlgorithm", "function"):
            continue  # a bodiless function is not a value an expression can produce
        try:
            produced = evaluator.invoke(name, trial)
            if isinstance(produced, Image):  # pixels too: computePixels reads them lazily
                for band in produced.bands:
                    band.source.read(SMALL)
            to_json(produced)
        except ApiError as problem:
            assert problem.code == 400, (name, argument, junk, problem.message)


def _plausible_arguments(evaluator: Evaluator) -> dict:
    image = evaluator.invoke("Image.load", {"id": "c/img"})
    return {"Image": image, "ImageCollection": evaluator.invoke("ImageCollection.load", {"id": "c/stack"}),
            "FeatureCollection": evaluator.invoke("ImageCollection.load", {"id": "c/stack"}), "Element": image,
            "String": "B4", "List": ["B4"], "Reducer": Reducer("mean"), "Filter": Filter(lambda e: True, "f"),
            "Date": Date(0), "Geometry": Geometry({"type": "Point", "coordinates": [0, 0]}),
            "Dictionary": {"B4": 1}, "Projection": None, "Integer": 1, "Number": 1, "Boolean": True}  # fmt: skip


def test_listed_algorithms_are_the_official_catalog(value_server):
    """The listing is earthengine-api's catalog verbatim; every registered algorithm has its signature."""
    import json
    import os

    import ee

    path = os.path.join(os.path.dirname(ee.__file__), "tests", "algorithms.json")
    with open(path, encoding="utf-8") as handle:
        official = {a["name"]: a for a in json.load(handle)["algorithms"]}
    listed = requests.get(f"{value_server.url}/v1/projects/p/algorithms", timeout=30).json()["algorithms"]
    assert len(listed) > 900
    # Our stored copy (a later commit, which dropped 6 S2 geometry constructors) agrees with the wheel's.
    for algorithm in listed:
        theirs = official[algorithm["name"]]
        assert [a["argumentName"] for a in algorithm.get("arguments", [])] == [
            a["argumentName"] for a in theirs.get("arguments", [])
        ], algorithm["name"]
    assert {a["name"] for a in listed} >= {f"algorithms/{name}" for name in ALGORITHMS}
    for name, definition in ALGORITHMS.items():
        theirs = official[f"algorithms/{name}"]
        assert [a.name for a in definition.arguments] == [a["argumentName"] for a in theirs.get("arguments", [])], name
        assert [a.optional for a in definition.arguments] == [
            a.get("optional", False) for a in theirs.get("arguments", [])
        ], name


def test_value_compute_is_counted(value_server):
    value_server.reset_stats()
    assert value(value_server, {"constantValue": 1}, version="v1beta").json() == {"result": 1}
    assert value_server.stats()["requests"] == {"valueCompute": 1}


def test_every_algorithm_is_documented():
    import pathlib

    docs = (pathlib.Path(__file__).parents[2] / "docs" / "server.md").read_text(encoding="utf-8")
    section = docs[docs.index("### Supported algorithms") :]
    missing = [name for name in ALGORITHMS if f"`{name}`" not in section and f"`{name}(" not in section]
    assert missing == []


def test_very_long_operation_chains_and_deep_constants_are_400(value_server):
    # Collection.iterate building one band through 3000 additions (lists the images 600 times).
    values = {
        "0": call("Collection.iterate", collection=call("ImageCollection.fromImages", images={"valueReference": "2"}),
                  first=call("Image.constant", value=0),
                  function={"functionDefinitionValue": {"argumentNames": ["img", "acc"], "body": "1"}}),
        "1": call("Image.add", image1={"argumentReference": "acc"}, image2=call("Image.constant", value=1)),
        "2": {"arrayValue": {"values": [load("c/img")] * 3000}},
    }  # fmt: skip
    body = {"expression": {"result": "0", "values": values}, "fileFormat": "NPY",
            "grid": GRID.window(Window(0, 2, 0, 2)).to_rest()}  # fmt: skip
    response = requests.post(f"{value_server.url}/v1/projects/p/image:computePixels", json=body, timeout=60)
    assert "too many nested operations" in error(response)
    deep = b'{"expression": {"result": "0", "values": {"0": {"constantValue": ' + b"[" * 5000 + b"]" * 5000 + b"}}}}"
    url = f"{value_server.url}/v1/projects/p/value:compute"
    assert "Invalid JSON payload" in error(requests.post(url, data=deep, timeout=30))
