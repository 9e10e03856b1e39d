"""The read engine: plans reads (plan.py), fetches them (source.py), runs them where dask puts them (run.py),
and counts what a compute will cost before it runs (cost.py). See docs/concepts.md, "The read engine".
"""
