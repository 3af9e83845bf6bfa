"""Errors of the model store, pull and import; each message is one line a user can act on."""


class ModelError(Exception):
    """A model could not be found, built, loaded or registered."""


class ModelNotFoundError(ModelError):
    """The named model is not installed."""


class RegistryUnreachableError(ModelError):
    """No package registry answered while pulling a model."""


class UnsupportedModelError(ModelError):
    """The source is not a model, or its architecture cannot be served."""
