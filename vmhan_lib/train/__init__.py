"""Training: the shared text encoder (stage 1), hypergraph models on its features (stage 2), run
records, and the experiments behind the paper's Tables 1 and 2."""
