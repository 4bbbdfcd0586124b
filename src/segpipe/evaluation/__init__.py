"""Phase 6 (blend, threshold): Dice from pixel counts, the OOF files, the blend of the models, the
post-processing rule and its search, the CV and holdout scores.
"""
