"""The plan phase: measure the training set (fingerprint) and derive every `auto` param from it (rules)."""
