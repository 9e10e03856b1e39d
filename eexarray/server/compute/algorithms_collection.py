"""Collection algorithms: load, fromImages, filter, size, first, limit, toList, map, iterate, toBands.

``ImageCollection.fromImages`` numbers its images: ``system:index`` "0", "1"...;
``Collection.map`` keeps each input's ``system:index`` on the output when the
function's result has none (so ``toBands`` names stay stable after a map).
"""

from __future__ import annotations

from typing import Any

from eexarray.server.compute import values as v
from eexarray.server.compute.algorithms_filter import MISSING, field_value
from eexarray.server.compute.assets import load_collection
from eexarray.server.compute.registry import Call, algorithm, opt

COLLECTION = "FeatureCollection"  # the official catalog types Collection.* arguments so


@algorithm("ImageCollection.load", "ImageCollection", "Loads an image collection by its asset id.",
           ("id", "String"), opt("version", "Long"))  # fmt: skip
def _load(call: Call) -> v.Collection:
    return load_collection(call.evaluator.catalog, call.string("id"))


def _images(call: Call, name: str) -> list[v.Image]:
    items = call.sequence(name)
    for position, item in enumerate(items):
        if not isinstance(item, v.Image):
            raise call.error(f"{name}[{position}] must be an Image, got {v.type_name(item)}.")
    return items


@algorithm("ImageCollection.fromImages", "ImageCollection", "A collection of the given images (system:index 0..n-1).",
           ("images", "List<Image<unknown bands>>"))  # fmt: skip
def _from_images(call: Call) -> v.Collection:
    images = _images(call, "images")
    return v.Collection(tuple(image.with_properties({**image.properties, "system:index": str(position)})
                              for position, image in enumerate(images)))  # fmt: skip


@algorithm("ImageCollection.merge", "ImageCollection", "The images of both collections.",
           ("collection1", "ImageCollection"), ("collection2", "ImageCollection"))  # fmt: skip
def _merge(call: Call) -> v.Collection:
    first, second = call.collection("collection1"), call.collection("collection2")
    return v.Collection(first.images + second.images)


@algorithm("Collection.filter", COLLECTION, "The elements passing the filter, in order.",
           ("collection", COLLECTION), ("filter", "Object"))  # fmt: skip
def _filter(call: Call) -> v.Collection | v.FeatureCollection:
    collection = call.any_collection("collection")
    test = call.of("filter", v.Filter, "Filter").test
    return collection.with_elements([element for element in collection.elements if test(element)])


@algorithm("Collection.size", "Integer", "The number of elements.", ("collection", COLLECTION))
def _size(call: Call) -> int:
    return len(call.any_collection("collection").elements)


@algorithm("Collection.first", "Element", "The first element (null for an empty collection).",
           ("collection", COLLECTION))  # fmt: skip
def _first(call: Call) -> v.Image | v.Feature | None:
    images = call.any_collection("collection").elements
    return images[0] if images else None


@algorithm("Collection.limit", COLLECTION, "Sorts by a property (optional), then keeps the first `limit` elements.",
           ("collection", COLLECTION), opt("limit", "Integer", "At most this many elements (null: all)."),
           opt("key", "String", "The property to sort by."),
           opt("ascending", "Boolean", "Sort ascending.", True))  # fmt: skip
def _limit(call: Call) -> v.Collection | v.FeatureCollection:
    collection = call.any_collection("collection")
    images: list[Any] = list(collection.elements)
    key = call.optional_string("key")
    if key is not None:
        present = [image for image in images if field_value(image, key) is not MISSING]
        absent = [image for image in images if field_value(image, key) is MISSING]
        try:
            present.sort(key=lambda image: field_value(image, key), reverse=not call.boolean("ascending"))
        except TypeError:
            raise call.error(f"Property '{key}' mixes types that cannot be ordered.") from None
        images = present + absent
    limit = call.optional_integer("limit")
    if limit is not None:
        if limit < 0:
            raise call.error(f"limit must not be negative, got {limit}.")
        images = images[:limit]
    return collection.with_elements(images)


@algorithm("Collection.toList", "List<Object>", "Up to `count` elements from `offset` as a list.",
           ("collection", COLLECTION), ("count", "Integer"), opt("offset", "Integer", "", 0))  # fmt: skip
def _to_list(call: Call) -> list[Any]:
    images = call.any_collection("collection").elements
    count, offset = call.integer("count"), call.integer("offset")
    if count < 0 or offset < 0:
        raise call.error(f"count and offset must not be negative, got count={count}, offset={offset}.")
    return list(images[offset : offset + count])


@algorithm("Collection.map", COLLECTION, "The function applied to every element.",
           ("collection", COLLECTION), ("baseAlgorithm", "Algorithm"),
           opt("dropNulls", "Boolean", "Drop elements for which the function returns null.", False))  # fmt: skip
def _map(call: Call) -> v.Collection | v.FeatureCollection:
    collection = call.any_collection("collection")
    function = call.function("baseAlgorithm", 1)
    drop_nulls = call.boolean("dropNulls")
    kind, expected = (v.Image, "an Image") if isinstance(collection, v.Collection) else (v.Feature, "a Feature")
    results: list[Any] = []
    for element in collection.elements:
        result = call.apply(function, [element])
        if result is None and drop_nulls:
            continue
        if not isinstance(result, kind):
            raise call.error(f"The mapped function must return {expected}, got {v.type_name(result)}.")
        if "system:index" not in result.properties and "system:index" in element.properties:
            index = element.properties["system:index"]
            if isinstance(result, v.Image):
                result = result.with_properties({**result.properties, "system:index": index})
            else:
                result = v.Feature(result.geometry, {**result.properties, "system:index": index})
        results.append(result)
    return collection.with_elements(results)


@algorithm("Collection.iterate", "Object", "Folds the function over the elements, starting from `first`.",
           ("collection", COLLECTION), ("function", "Algorithm"), opt("first", "Object"))  # fmt: skip
def _iterate(call: Call) -> Any:
    function = call.function("function", 2)
    state = call.get("first")
    for element in call.any_collection("collection").elements:
        state = call.apply(function, [element, state])
    return state


@algorithm("ImageCollection.toBands", "Image<unknown bands>",
           "One image of all bands of all images, named '<system:index>_<band>'.",
           ("collection", "ImageCollection"))  # fmt: skip
def _to_bands(call: Call) -> v.Image:
    bands: list[v.Band] = []
    for position, image in enumerate(call.collection("collection").images):
        prefix = image.properties.get("system:index", str(position))
        bands.extend(band.renamed(f"{prefix}_{band.id}") for band in image.bands)
    return v.Image(tuple(bands))


@algorithm("AggregateFeatureCollection.array", "List<Object>", "The values of a property over the collection.",
           ("collection", COLLECTION), ("property", "String"))  # fmt: skip
def _aggregate_array(call: Call) -> list[Any]:
    name = call.string("property")
    found = [field_value(element, name) for element in call.any_collection("collection").elements]
    return [value for value in found if value is not MISSING]
