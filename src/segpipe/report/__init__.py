"""The report stage: pictures of the OOF cases, the folds and the training and threshold curves."""
