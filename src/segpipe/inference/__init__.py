"""Phase 5 (predict@<model>): the folds as an ensemble with TTA, whole images or sliding windows,
streamed into compressed uint8 probability maps.
"""
