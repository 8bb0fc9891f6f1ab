"""Run folders: save and load a model with its configuration, history and detector (run.py), and the one
atomic writer and safe readers every stage uses (storage.py). Nothing is imported here, so that the data
stage can use storage.py without loading the models."""
