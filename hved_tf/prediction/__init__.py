"""Prediction: segmenting subjects and writing their outputs (`app`)."""
