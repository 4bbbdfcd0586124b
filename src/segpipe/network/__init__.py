"""The model: built from smp/timm names, its checkpoint, and the input, precision and memory format
that training and inference share.
"""
