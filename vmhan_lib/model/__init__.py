"""The VM-HAN model (paper section 4): Eq. 4 variational representation, V-HAN layers (Eq. 5-8),
the graph baselines (HGNN, GCN, GAT, variational GCN), the Eq. 9 classifier, the Eq. 10-12 losses,
and the Table 1 / Table 2 variants.

Import from the submodules: this package imports nothing, so that the torch-free configs
(:mod:`~vmhan_lib.model.config`, :mod:`~vmhan_lib.model.variants`) load without torch. Typical use::

    from vmhan_lib.hypergraph.batch import collate_hypergraphs
    from vmhan_lib.model.losses import vmhan_loss
    from vmhan_lib.model.variants import variant_config
    from vmhan_lib.model.vmhan import build_model

    config = variant_config("VM-HAN (Ours)").sized(d_text=384, d_visual=384, num_relations=23)
    batch = collate_hypergraphs(instances, config.hypergraph, labels)
    model = build_model(config)
    output = model(batch)
    losses = vmhan_loss(output, batch.labels, config)   # losses["total"].backward()
"""
