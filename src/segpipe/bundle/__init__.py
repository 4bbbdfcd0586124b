"""Phase 8 (bundle, `make bundle`): an offline inference bundle for a Kaggle code competition, and the
inference that runs from it in a notebook (`segpipe.infer`) with the pipeline's own predict and submit code.
"""
