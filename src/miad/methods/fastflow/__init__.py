"""FastFlow (Yu et al., arXiv 2111.07677): 2-D normalising flows on frozen CNN features, one flow per scale.

`model.py` holds the config, presets and the torch model; `flow.py` our own invertible coupling blocks;
`detector.py` the fit/predict wrapper registered as "fastflow".
"""
