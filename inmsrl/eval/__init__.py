"""Evaluation: embeddings of test sets, music-ID scores, separation quality, perceptual agreement."""
