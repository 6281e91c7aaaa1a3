"""``deepseek.monitor``: Prometheus metrics of a training run.

```python
from deepseek.monitor import MetricsServer
server = MetricsServer(port=9464)          # http://0.0.0.0:9464/metrics
server.record_step(loss=0.93, lr=3e-3, units=32, unit="samples", step_seconds=0.05)
```

``deepseek.trainer.Trainer(metrics_port=9464)`` and ``deepseek train --metrics-port 9464``
update it for you. Metrics (prefix ``deepseek_``): ``train_steps_total``, ``train_loss``,
``val_loss``, ``learning_rate``, ``train_throughput{unit}``, ``train_units_total{unit}``,
``train_step_seconds``, ``train_elapsed_seconds``, ``memory_allocated_bytes``,
``memory_peak_bytes``, ``process_resident_memory_bytes``, ``checkpoints_total``,
``checkpoint_age_seconds``.
"""

from . import _C

__all__ = ["MetricsServer"]


class MetricsServer:
    """Serves ``/metrics`` in the Prometheus text format from a background thread.
    ``port=0`` picks a free port (see ``.port``); a port in use raises ``RuntimeError``."""

    def __init__(self, port=9464, host="0.0.0.0"):
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValueError(f"MetricsServer: port must be an int in 0..65535, got {port!r}")
        addr = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._s = _C._MetricsServer(addr)

    @property
    def port(self):
        """The port it listens on."""
        return self._s.port

    @property
    def url(self):
        """The metrics URL."""
        return f"http://{self._s.address}/metrics"

    def record_step(self, loss, lr, units=0, unit="samples", step_seconds=0.0):
        """Records one optimizer step."""
        self._s.record_step(float(loss), float(lr), int(units), str(unit), float(step_seconds))

    def set_throughput(self, per_second, unit="samples"):
        """Sets the throughput gauge."""
        self._s.set_throughput(float(per_second), str(unit))

    def record_val_loss(self, loss):
        """Records a validation loss."""
        self._s.record_val_loss(float(loss))

    def record_checkpoint(self):
        """Records that a checkpoint was just written (resets the checkpoint age)."""
        self._s.record_checkpoint()

    def render(self):
        """The metrics text, as a scrape would see it."""
        return self._s.render()

    def close(self):
        """Stops serving."""
        self._s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
