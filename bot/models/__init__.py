"""The model edge: the only place that imports litellm; pricing, streaming, the embedded model."""
