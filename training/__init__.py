"""Training pipeline for crack segmentation: datasets, augmentation, losses, metrics, loop, export.

Plain Python: imports no Django.
"""
