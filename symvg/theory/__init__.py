"""What follows from the exact chain: float underflow and lost updates, the remedies (ReLU, residual,
LSTM), mean-field theory of wide networks, matrices and spectra, and the classic worked examples."""
