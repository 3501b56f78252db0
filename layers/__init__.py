"""The layer registry: one declarative record per facility layer."""
from layers.registry import LAYERS, LAYER_KEYS, Layer, Threshold, get_layer, validate_registry

__all__ = ["LAYERS", "LAYER_KEYS", "Layer", "Threshold", "get_layer", "validate_registry"]
