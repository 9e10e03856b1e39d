"""Computed images for the local server: ``image:computePixels`` and ``value:compute``.

Modules: ``graph`` (decoding the expression DAG), ``values`` and ``pixeltype`` (the
value model), ``bands`` (lazy per-grid pixels), ``registry`` (algorithm table and
argument access), ``evaluator``, the algorithm families ``algorithms_image``,
``algorithms_math``, ``algorithms_collection``, ``algorithms_reduce``,
``algorithms_filter``, ``algorithms_values``, ``assets`` (loading stored assets),
``info`` (getInfo-style JSON), ``pixels`` (computePixels) and ``service`` (entry
points). See docs/server.md for the supported algorithms.
"""

from eexarray.server.compute.pixels import ComputedPixels, compute_pixels
from eexarray.server.compute.registry import ALGORITHMS, algorithm_list
from eexarray.server.compute.service import compute_value, evaluate

__all__ = ["ALGORITHMS", "ComputedPixels", "algorithm_list", "compute_pixels", "compute_value", "evaluate"]
