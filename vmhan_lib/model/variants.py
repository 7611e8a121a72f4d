"""The rows of the paper's Table 2 (ablations) and Table 1's graph baselines, as config transforms,
and the late-fusion baseline of the controlled visual-signal study (no paper row, in no table).

``VARIANTS[name](base)`` returns ``base`` changed into the variant ``name``;
``base`` is the full model (e.g. the ``model`` field of a run configuration). Names are exactly
the paper's row labels so result tables can be keyed by them. Each function's docstring states
our reading of the ablation. Torch-free: build the model with :func:`vmhan_lib.model.vmhan.build_model`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from vmhan_lib.config_tree import ConfigError
from vmhan_lib.hypergraph.config import INTER_MODAL_EDGES, INTRA_MODAL_EDGES
from vmhan_lib.model.config import ModelConfig

FULL_MODEL = "VM-HAN (Ours)"
VariantFn = Callable[[ModelConfig], ModelConfig]


def full_model(base: ModelConfig) -> ModelConfig:
    """VM-HAN: Eq. 4 Gaussians, V-HAN over all five hyperedge types with the LLM nodes, Eq. 12 loss."""
    return base


def without_multimodal_hypergraph(base: ModelConfig) -> ModelConfig:
    """No hyperedge spans both modalities: only the intra-modal hyperedges (textual, visual) remain.

    The paper attributes this row's drop to losing the high-order cross-modal correlations. We
    keep V-HAN and the variational representation and remove every multi-modal hyperedge (global,
    head-visual, tail-visual), so text and image become two separate unimodal hypergraphs: the
    head and tail still exchange information with the text-LLM nodes through the textual
    hyperedge, but no visual information can reach them.
    """
    hypergraph = base.hypergraph.without_edges("global", *INTER_MODAL_EDGES)
    return replace(base, hypergraph=hypergraph)


def without_variational_representation(base: ModelConfig) -> ModelConfig:
    """Deterministic node vectors x_i = W_mu x_i (no W_sigma), V-HAN without its sigma path, the
    classifier on [x_h; x_t], and only the classification loss (no reconstruction, no KL)."""
    return replace(base, variational=False)


def without_vhan(base: ModelConfig) -> ModelConfig:
    """No hypergraph encoder: Eq. 4's (mu, sigma) of the head and tail go straight to the Eq. 9
    classifier. The KL loss stays (on the Eq. 4 Gaussians); the reconstruction loss is
    identically 0 without an encoder and is dropped (lambda_rec = 0)."""
    return replace(base, encoder="none", lambda_rec=0.0)


def without_kl_loss(base: ModelConfig) -> ModelConfig:
    """The full model trained without Eq. 11's KL term (lambda_KL = 0)."""
    return replace(base, lambda_kl=0.0)


def without_text_llm(base: ModelConfig) -> ModelConfig:
    """No text-LLM nodes: the textual side of the hypergraph is {v_h, v_t} as in the paper's Eq. 2."""
    return replace(base.with_hypergraph(use_text_llm=False))


def without_visual_llm(base: ModelConfig) -> ModelConfig:
    """No visual-LLM nodes: the visual side is {v_I, k objects} as in the paper's Eq. 2-3."""
    return replace(base.with_hypergraph(use_visual_llm=False))


def without_global_hypergraph(base: ModelConfig) -> ModelConfig:
    """No global hyperedge (Eq. 1); the intra- and inter-modal hyperedges remain."""
    return replace(base, hypergraph=base.hypergraph.without_edges("global"))


def without_intra_modal_hypergraph(base: ModelConfig) -> ModelConfig:
    """No textual and no visual hyperedge (Eq. 2); the global and inter-modal ones remain."""
    hypergraph = base.hypergraph.without_edges(*INTRA_MODAL_EDGES)
    return replace(base, hypergraph=hypergraph)


def without_inter_modal_hypergraph(base: ModelConfig) -> ModelConfig:
    """No head-visual and no tail-visual hyperedge (Eq. 3); the global and intra-modal ones remain."""
    hypergraph = base.hypergraph.without_edges(*INTER_MODAL_EDGES)
    return replace(base, hypergraph=hypergraph)


def replace_with_hgnn(base: ModelConfig) -> ModelConfig:
    """V-HAN replaced by HGNN convolutions on the same hypergraph; HGNN has no variance path, so
    the nodes are deterministic (as "w/o Variational Representation") and the loss is L_c only."""
    return replace(base, encoder="hgnn", variational=False)


def replace_with_variational_gcn(base: ModelConfig) -> ModelConfig:
    """V-HAN replaced by a variational GCN on the clique expansion of the hypergraph; the Eq. 4
    Gaussians and the full Eq. 12 loss stay."""
    return replace(base, encoder="vgcn", variational=True)


def replace_with_gcn(base: ModelConfig) -> ModelConfig:
    """V-HAN replaced by GCN on the clique expansion; deterministic nodes, loss L_c only."""
    return replace(base, encoder="gcn", variational=False)


def replace_with_gat(base: ModelConfig) -> ModelConfig:
    """V-HAN replaced by multi-head GAT on the clique expansion; deterministic nodes, loss L_c only."""
    return replace(base, encoder="gat", variational=False)


def text_only(base: ModelConfig) -> ModelConfig:
    """The classifier over the projected head and tail text features alone: no visual node, no
    text-LLM node, no encoder, deterministic vectors, loss L_c only."""
    hypergraph = replace(base.hypergraph, use_visual=False, use_text_llm=False)
    return replace(base, encoder="none", variational=False, hypergraph=hypergraph)


def late_fusion(base: ModelConfig) -> ModelConfig:
    """Not a paper row (the controlled visual-signal study, issue 24): Text-only's classifier on the
    head, the tail and the mean-pooled visual nodes (image, objects, visual-LLM nodes), no graph, no
    text-LLM node, deterministic, loss L_c only: p(r) = softmax(W_c [x_h; x_t; mean_{i in V} x_i] + b_c)
    (:mod:`vmhan_lib.model.late_fusion`)."""
    hypergraph = replace(base.hypergraph, use_text_llm=False)
    return replace(base, encoder="late-fusion", variational=False, hypergraph=hypergraph)


def _table1_graph_baseline(name: str, replacement: VariantFn) -> VariantFn:
    def baseline(base: ModelConfig) -> ModelConfig:
        plain = base.with_hypergraph(use_text_llm=False, use_visual_llm=False)
        return replacement(plain)

    baseline.__doc__ = (
        f"Table 1's graph baseline {name}: as \"repl. {name}\" but on the paper's plain Eq. 1-3 "
        "hypergraph (v_h, v_t, v_I, k objects; no text- or visual-LLM node). Table 1 reports these "
        "well below the Table 2 \"repl.\" rows, which we read as the baselines lacking VM-HAN's "
        "LLM-enhanced nodes."
    )
    return baseline


VARIANTS: dict[str, VariantFn] = {
    FULL_MODEL: full_model,
    "w/o Multi-Modal Hypergraph": without_multimodal_hypergraph,
    "w/o Variational Representation": without_variational_representation,
    "w/o V-HAN": without_vhan,
    "w/o KL Loss": without_kl_loss,
    "w/o Text LLM Enhancement": without_text_llm,
    "w/o Visual LLM Enhancement": without_visual_llm,
    "w/o Global Hypergraph": without_global_hypergraph,
    "w/o Intra-modal Hypergraph": without_intra_modal_hypergraph,
    "w/o Inter-modal Hypergraph": without_inter_modal_hypergraph,
    "repl. HGNN": replace_with_hgnn,
    "repl. Variational GCN": replace_with_variational_gcn,
    "repl. GCN": replace_with_gcn,
    "repl. GAT": replace_with_gat,
    "Text-only": text_only,
    "GCN": _table1_graph_baseline("GCN", replace_with_gcn),
    "GAT": _table1_graph_baseline("GAT", replace_with_gat),
    "HGNN": _table1_graph_baseline("HGNN", replace_with_hgnn),
    "Late fusion": late_fusion,
}
"""Variant name (Table 1 / Table 2 row label; ``"Late fusion"`` is no paper row, it is the controlled
visual-signal study's baseline) -> ``ModelConfig -> ModelConfig``."""

TABLE2_VARIANTS: tuple[str, ...] = tuple(list(VARIANTS)[:14])
"""The 14 rows of the paper's Table 2, in its order."""
TABLE1_VARIANTS: tuple[str, ...] = (FULL_MODEL, "Text-only", "GCN", "GAT", "HGNN")
"""Our rows of the paper's Table 1 (the fine-tuned text encoder of stage 1 adds one more)."""


def variant_config(name: str, base: ModelConfig | None = None) -> ModelConfig:
    """The config of variant ``name`` built on ``base`` (default: :class:`ModelConfig` defaults)."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; known variants: {', '.join(repr(n) for n in VARIANTS)}")
    return VARIANTS[name](base if base is not None else ModelConfig())


def check_variants(names: Sequence[str]) -> tuple[str, ...]:
    """``names`` when every one is a row of :data:`VARIANTS` and there is at least one, else a
    :class:`ConfigError` naming the unknown ones and the allowed names."""
    unknown = [name for name in names if name not in VARIANTS]
    if unknown or not names:
        raise ConfigError(f"unknown or no variant(s) {unknown}; allowed: {'; '.join(VARIANTS)}")
    return tuple(names)
