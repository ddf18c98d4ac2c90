"""``TrainConfig`` is the ``training`` section of Settings; it lives in
:mod:`tentalis.config.training` and is re-exported here for the training package."""

from tentalis.config.training import TrainConfig

__all__ = ["TrainConfig"]
