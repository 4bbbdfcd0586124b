"""Phase 7 (submit): the run-length-encoded submission, written streaming and validated, and the Kaggle
message.
"""
