"""The names of the files that stages hand each other: the prepared cache, checkpoints, OOF and test
maps.
"""
