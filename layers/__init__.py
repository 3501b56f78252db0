"""The layer registry: one declarative record per facility layer."""
from layers.composite import LIFE_CIRCLE, Composite
from layers.model import Layer, Target, Threshold
from layers.registry import LAYER_KEYS, LAYERS, URBAN_DENSITY_PER_KM2, get_layer, layer_keys
from layers.validate import validate_registry

__all__ = ["LAYERS", "LAYER_KEYS", "LIFE_CIRCLE", "URBAN_DENSITY_PER_KM2", "Composite", "Layer", "Target",
           "Threshold", "get_layer", "layer_keys", "validate_registry"]
