"""DeepSpeech2 on MindSpore: network, data pipeline, training and evaluation library."""
