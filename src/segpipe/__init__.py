"""segpipe: a Kaggle image-segmentation pipeline driven by DVC."""
