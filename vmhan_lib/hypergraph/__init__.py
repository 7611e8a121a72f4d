"""Multi-modal hypergraph construction (paper Eq. 1-3) and batching as padded dense tensors.

Build a batch with :func:`vmhan_lib.hypergraph.batch.collate_hypergraphs` from a list of
:class:`vmhan_lib.features.nodes.InstanceNodes` and a :class:`vmhan_lib.hypergraph.config.HypergraphConfig`
(one hypergraph per entity pair, ``scope = pair``), or with
:func:`vmhan_lib.hypergraph.sentence.collate_sentences` from the pairs of each sentence (one
hypergraph per sentence-image pair, ``scope = sentence``).
Import from the submodules: this package imports nothing, so that the torch-free
:mod:`~vmhan_lib.hypergraph.config` loads without torch.
"""
