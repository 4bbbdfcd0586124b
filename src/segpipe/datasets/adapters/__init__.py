"""One module per dataset, named as its params section and found by that name (`base.dataset`).

What a module provides is in `segpipe.datasets.base`; adding a dataset is a module here and its
section in params.yaml (docs/competition.md).
"""
