"""Synthetic competitions, generated offline: the embedded default and the kinds that exercise each path.

    brain      brain-MRI-like lesion slices, one class (`brain`): the default
    thin       thin curves on large images, for tile mode (`thin`)
    multi      three overlapping lesion classes, a multi-label competition (`multi`)
    exclusive  the same classes, one a pixel: a multi-class competition (softmax with a background)

`write.write` lays any kind out as a Kaggle download; the dataset adapter
`segpipe.datasets.adapters.synthetic` generates and reads it. Nothing here knows the pipeline.
"""
