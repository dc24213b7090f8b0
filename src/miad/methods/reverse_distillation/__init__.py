"""Reverse Distillation (RD4AD, Deng & Li, CVPR 2022, arXiv 2201.10703): a frozen teacher, a trainable one-class
bottleneck and a student decoder that reconstructs the teacher's multi-scale features; anomalies are where the
student's features disagree with the teacher's. See `model.py` for the details and deviations."""
