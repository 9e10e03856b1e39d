"""Earth Engine expression graphs built without ``earthengine-api``. Pure.

An expression is ``{"result": key, "values": {key: ValueNode}}``. We build the few
we need (load, select, pack a time series into one image) and wrap expressions users
give us (a computed image, or one image of a computed collection).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

Expression = dict[str, Any]


def _invoke(name: str, **arguments: Any) -> dict[str, Any]:
    return {"functionInvocationValue": {"functionName": name, "arguments": arguments}}


def _constant(value: Any) -> dict[str, Any]:
    return {"constantValue": value}


def load_image(asset_id: str) -> dict[str, Any]:
    return _invoke("Image.load", id=_constant(asset_id))


def select_bands(image: dict[str, Any], band_ids: Sequence[str]) -> dict[str, Any]:
    return _invoke("Image.select", input=image, bandSelectors=_constant(list(band_ids)))


# One time step: a stored image (its asset name), or the names of the images mosaicked into it.
Member = str | tuple[str, ...]


def _from_images(images: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return _invoke("ImageCollection.fromImages", images={"arrayValue": {"values": list(images)}})


def resample(image: dict[str, Any], mode: str) -> dict[str, Any]:
    """``Image.resample(image, mode)`` ("bilinear" or "bicubic"); "nearest" leaves ``image`` as it is
    (Earth Engine's default needs no call)."""
    if mode == "nearest":
        return image
    return _invoke("Image.resample", image=image, mode=_constant(mode))


def stored_image(asset_id: str, band_ids: Sequence[str], resampling: str = "nearest") -> Expression:
    """``band_ids`` of a stored image, resampled by ``resampling``, as an expression for ``computePixels``."""
    return {"result": "0", "values": {"0": resample(select_bands(load_image(asset_id), band_ids), resampling)}}


def resampled(expression: Expression, mode: str) -> Expression:
    """A computed image's expression with ``Image.resample(mode)`` around its result."""
    if mode == "nearest":
        return expression
    values = dict(expression["values"])
    key = "eexarray_resampled"
    while key in values:
        key += "_"
    values[key] = resample({"valueReference": expression["result"]}, mode)
    return {"result": key, "values": values}


def member_image(member: Member, band_ids: Sequence[str], resampling: str = "nearest") -> dict[str, Any]:
    """``band_ids`` of one time step: the stored image, or ``ImageCollection.mosaic`` of its images
    (later images drawn over earlier ones where they are not masked). With ``resampling`` other than
    nearest, every stored image is resampled before it is mosaicked (Earth Engine resamples images
    in their own projection; a mosaic has none)."""
    if isinstance(member, str):
        return resample(select_bands(load_image(member), band_ids), resampling)
    if len(member) == 1:
        return resample(select_bands(load_image(member[0]), band_ids), resampling)
    layers = [resample(select_bands(load_image(asset), band_ids), resampling) for asset in member]
    return _invoke("ImageCollection.mosaic", collection=_from_images(layers))


def mosaic_image(assets: Sequence[str], band_ids: Sequence[str], resampling: str = "nearest") -> Expression:
    """The mosaic of ``assets`` (last on top) as an expression for ``computePixels``."""
    return {"result": "0", "values": {"0": member_image(tuple(assets), band_ids, resampling)}}


def packed_time_series(images: Sequence[tuple[Member, Sequence[str]]], resampling: str = "nearest") -> Expression:
    """One image holding ``bands`` of each ``(member, bands)`` in order (a member: an asset id, or
    the asset ids of a mosaic), each resampled by ``resampling``.

    ``ImageCollection.toBands`` names the bands ``<k>_<band>``, ``k`` being the image's
    position in ``ImageCollection.fromImages`` (its ``system:index``).
    """
    members = [member_image(member, bands, resampling) for member, bands in images]
    return {"result": "0", "values": {"0": _invoke("ImageCollection.toBands", collection=_from_images(members))}}


def packed_band_ids(images: Sequence[tuple[Member, Sequence[str]]]) -> list[str]:
    return [f"{position}_{band}" for position, (_, bands) in enumerate(images) for band in bands]


def validate_expression(value: Any) -> Expression:
    """A well-formed expression graph (``result`` names an entry of ``values``), else ValueError."""
    if not isinstance(value, dict) or set(value) - {"result", "values"} or "result" not in value:
        raise ValueError(
            "An Earth Engine expression must be a dict {'result': key, 'values': {key: ValueNode}}, "
            f"got {str(value)[:200]!r}"
        )
    values = value.get("values")
    if not isinstance(values, dict) or value["result"] not in values:
        raise ValueError(f"Expression result {value['result']!r} is not a key of its 'values'")
    return value


def from_ee_object(obj: Any) -> Expression | None:
    """The expression of an ``ee.Image``/``ee.ImageCollection`` (importing ``ee`` only for such objects)."""
    module = type(obj).__module__ or ""
    if not (module == "ee" or module.startswith("ee.")):
        return None
    import ee

    return ee.serializer.encode(obj, for_cloud_api=True)


def element_of(collection: Expression, index: int, count: int) -> Expression:
    """The ``index``-th image of a computed collection: ``List.get(toList(collection, count), index)``."""
    values = dict(collection["values"])
    root = {"valueReference": collection["result"]}
    key = "eexarray_element"
    while key in values:
        key += "_"
    as_list = _invoke("Collection.toList", collection=root, count=_constant(count))
    values[key] = _invoke("List.get", list=as_list, index=_constant(index))
    return {"result": key, "values": values}


def canonical(expression: Expression) -> str:
    """Stable JSON text: hashable and small to pickle."""
    return json.dumps(expression, sort_keys=True, separators=(",", ":"))
