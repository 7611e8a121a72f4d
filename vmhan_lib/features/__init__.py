"""Features and node selection: text encoder, visual nodes (captions or images), LLM node selection,
and the on-disk caches. Produces :class:`vmhan_lib.features.nodes.InstanceNodes` for the hypergraph layer."""
