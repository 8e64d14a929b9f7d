"""ExportError: what the exporters and importers raise for a model, layer or option they cannot carry."""


class ExportError(ValueError):
    """A model, a layer or an option that cannot be exported or imported; the message names which and why."""
