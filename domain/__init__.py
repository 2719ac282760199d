"""Pure model-lifecycle logic: data quality, fingerprints, metrics, drift, promotion policy, ports.

Plain Python with numpy, pandas and pydantic only; an import-linter contract keeps ML,
tracking and serving frameworks out.
"""
