"""Torch-free stand-in for the parts of deepspeech.pytorch that the lab imports."""
