"""UniAD (You et al., NeurIPS 2022): neighbour-masked transformer reconstruction of frozen EfficientNet features."""
