"""Everything MLflow: the pyfunc wrapper, registration with tags, promotion, resolving and loading a version.

The only layer that imports mlflow; it never serves HTTP.
"""
