"""params.yaml as typed, frozen sections.

`train` (the sections a train stage reads) is kept apart from `params` (all of them), so a new
section for another stage never retrains a model.
"""
