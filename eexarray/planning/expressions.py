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


# -- exact masks: each image's bands followed by its mask bits --------------------------------------
#
# Earth Engine sends masked pixels as 0, so a valid 0 and a masked pixel look alike. An image
# fetched "with masks" carries, after its bands, ``ceil(bands / 8)`` uint8 bands of mask bits:
# bit ``i`` of mask band ``s`` is 1 where band ``8 * s + i`` is valid (its mask is not 0, as
# getPixels counts a partly masked pixel as data). One request, one byte per pixel per 8 bands.

MASK_BITS = 8


def mask_band_count(band_count: int) -> int:
    return -(-band_count // MASK_BITS)


def mask_band_names(band_ids: Sequence[str]) -> list[str]:
    """Names of the mask bands of ``band_ids``: ``eexarray_mask<s>``, with ``_`` added until none collides."""
    prefix = "eexarray_mask"
    while any(band.startswith(prefix) for band in band_ids):
        prefix += "_"
    return [f"{prefix}{slot}" for slot in range(mask_band_count(len(band_ids)))]


def _image_constant(value: int) -> dict[str, Any]:
    return _invoke("Image.constant", value=_constant(value))


class _Values:
    """The ``values`` table of an expression: shared nodes are stored once and referenced."""

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self.values: dict[str, Any] = dict(values or {})

    def add(self, node: dict[str, Any]) -> dict[str, Any]:
        key = str(len(self.values))
        while key in self.values:
            key += "_"
        self.values[key] = node
        return {"valueReference": key}


def _with_mask_bands(values: _Values, image: dict[str, Any], band_ids: Sequence[str]) -> dict[str, Any]:
    """``image``'s ``band_ids`` followed by their mask bands (a reference into ``values``)."""
    selected = values.add(select_bands(image, band_ids))
    mask = values.add(_invoke("Image.mask", image=selected))
    result = selected
    for slot, name in enumerate(mask_band_names(band_ids)):
        bits: dict[str, Any] | None = None
        for bit, position in enumerate(range(slot * MASK_BITS, min(len(band_ids), (slot + 1) * MASK_BITS))):
            # Bands are picked by index: a band id is a regex to Image.select.
            band_mask = _invoke("Image.select", input=mask, bandSelectors=_constant([position]))
            valid = _invoke("Image.neq", image1=band_mask, image2=_image_constant(0))
            term = valid if bit == 0 else _invoke("Image.multiply", image1=valid, image2=_image_constant(1 << bit))
            bits = term if bits is None else _invoke("Image.add", image1=bits, image2=term)
        assert bits is not None  # every mask band covers at least one band
        named = _invoke("Image.rename", input=_invoke("Image.toUint8", value=bits), names=_constant([name]))
        result = values.add(_invoke("Image.addBands", dstImg=result, srcImg=named))
    return result


def with_masks(expression: Expression, band_ids: Sequence[str]) -> Expression:
    """A computed image's ``band_ids`` followed by their mask bands (see ``mask_band_names``)."""
    values = _Values(expression["values"])
    result = _with_mask_bands(values, {"valueReference": expression["result"]}, band_ids)
    return {"result": result["valueReference"], "values": values.values}


def stored_with_masks(member: Member, band_ids: Sequence[str], resampling: str = "nearest") -> Expression:
    """A stored image's (or a mosaic's) ``band_ids`` followed by their mask bands (the masks of
    the resampled image when ``resampling`` is not nearest)."""
    values = _Values()
    result = _with_mask_bands(values, member_image(member, band_ids, resampling), band_ids)
    return {"result": result["valueReference"], "values": values.values}


def packed_with_masks(images: Sequence[tuple[Member, Sequence[str]]], resampling: str = "nearest") -> Expression:
    """``packed_time_series`` with each image's mask bands after its bands (``packed_masked_band_ids``)."""
    values = _Values()
    members = [_with_mask_bands(values, member_image(member, bands, resampling), bands) for member, bands in images]
    collection = _invoke("ImageCollection.fromImages", images={"arrayValue": {"values": members}})
    result = values.add(_invoke("ImageCollection.toBands", collection=collection))
    return {"result": result["valueReference"], "values": values.values}


def packed_masked_band_ids(images: Sequence[tuple[Member, Sequence[str]]]) -> list[tuple[list[str], list[str]]]:
    """Per image of ``packed_with_masks``: the names of its bands and of its mask bands."""
    return [
        ([f"{position}_{band}" for band in bands], [f"{position}_{name}" for name in mask_band_names(bands)])
        for position, (_, bands) in enumerate(images)
    ]


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
