"""Numbers: the chain rule evaluated for many samples (NumPy chunks, log domain, numba, CUDA) and
Monte-Carlo sampling of random chains; the mpmath reference is the independent oracle."""
