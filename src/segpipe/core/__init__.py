"""Shared by every phase: the input error type, the stage command line, atomic writes, devices and
seeds.
"""
