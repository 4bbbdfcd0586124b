"""Phase 2-3 (prepare, folds): decode and resize (or scale) the training set once into uint8 arrays,
the tile index, the 2.5D slice stacks, and the patient-level folds.
"""
