"""PatchCore (Roth et al., CVPR 2022): memory bank of normal patch features, coreset-thinned, nearest-neighbour
scoring; built to scale past the MIAD paper's 2,000-image limit (streaming chunked coreset, capped bank)."""
