"""Errors a user can act on. The CLI prints their message (no traceback) and exits non-zero."""


class MprnetError(Exception):
    """Base of every error caused by input, files or settings rather than by a bug."""

    exit_code = 1


class CheckpointError(MprnetError, ValueError):
    """A weights file that cannot be read or does not fit the network."""


class ImageError(MprnetError, ValueError):
    """An image file that cannot be read or written, or an image the network cannot take."""


class DataError(MprnetError, ValueError):
    """A data set folder, degradation setting or training-data option that cannot be used."""


class BaselineError(MprnetError, ValueError):
    """A classic method that cannot run: unknown name, missing noise level or kernel, missing optional package."""


class MetricError(MprnetError, ValueError):
    """A metric protocol or measurement setting that cannot be used."""


class RestoreError(MprnetError):
    """A restorer that gave no usable image (NaN or infinite values)."""


class UsageError(MprnetError):
    """Settings that cannot go together, or that name nothing to work on: a usage error (exit status 2)."""

    exit_code = 2


class TensorBundleError(CheckpointError):
    """A TensorFlow checkpoint (index or data shard) that is cut, damaged or of a kind that cannot be read."""

    exit_code = 2
