"""Phase 4 (train@<model>-<fold>): one fold's loaders, augmentation, training loop, resume state, DDP,
dvclive logging and its OOF maps.
"""
