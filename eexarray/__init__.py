"""eexarray: Earth Engine imagery as lazy xarray Datasets."""
