"""The VM-HAN model (paper section 4): Eq. 4 variational representation, V-HAN layers (Eq. 5-8),
the graph baselines (HGNN, GCN, GAT, variational GCN), the Eq. 9 classifier, the Eq. 10-12 losses,
and the Table 1 / Table 2 variants.

Typical use::

    config = variant_config("VM-HAN (Ours)").sized(d_text=384, d_visual=384, num_relations=23)
    batch = collate_hypergraphs(instances, config.hypergraph, labels)
    model = build_model(config)
    output = model(batch)
    losses = vmhan_loss(output, batch.labels, config)   # losses["total"].backward()
"""

from vmhan_lib.hypergraph.config import HypergraphConfig
from vmhan_lib.model.config import ENCODERS, ModelConfig
from vmhan_lib.model.losses import kl_loss, reconstruction_loss, vmhan_loss
from vmhan_lib.model.variants import FULL_MODEL, TABLE1_VARIANTS, TABLE2_VARIANTS, VARIANTS, variant_config
from vmhan_lib.model.vhan_layer import HypergraphAttention
from vmhan_lib.model.vmhan import VMHAN, ModelOutput, build_model

__all__ = [
    "ENCODERS", "FULL_MODEL", "TABLE1_VARIANTS", "TABLE2_VARIANTS", "VARIANTS", "VMHAN", "HypergraphAttention",
    "HypergraphConfig", "ModelConfig", "ModelOutput", "build_model", "kl_loss",
    "reconstruction_loss", "variant_config", "vmhan_loss",
]
