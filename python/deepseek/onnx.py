"""``deepseek.onnx``: the module path of ``torch.onnx`` (programs import it at start-up).

deepseek cannot export ONNX graphs yet (the exporter is planned to read the op
declarations); every export entry point raises ``NotImplementedError`` saying so, rather
than writing nothing. ``is_in_onnx_export()`` is False.
"""

__all__ = ["export", "dynamo_export", "is_in_onnx_export", "OnnxExporterError"]


class OnnxExporterError(RuntimeError):
    """Raised by a failed export (PyTorch's ``torch.onnx.OnnxExporterError``)."""


def _not_yet(what):
    raise NotImplementedError(
        f"deepseek.onnx.{what}: ONNX export is not implemented in deepseek yet; save the "
        "weights with deepseek.save(model.state_dict(), 'model.pt') (PyTorch's format) and "
        "export from PyTorch")


def export(model, args=(), f=None, *pos, **kwargs):
    """Not implemented yet: raises ``NotImplementedError``."""
    _not_yet("export")


def dynamo_export(model, *args, **kwargs):
    """Not implemented yet: raises ``NotImplementedError``."""
    _not_yet("dynamo_export")


def is_in_onnx_export():
    """False: deepseek never runs a model under an ONNX export."""
    return False
