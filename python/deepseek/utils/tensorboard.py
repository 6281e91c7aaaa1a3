"""``deepseek.utils.tensorboard``: TensorBoard event files, as ``torch.utils.tensorboard``.

```python
from deepseek.utils.tensorboard import SummaryWriter
writer = SummaryWriter("runs/exp1")
for step in range(100):
    writer.add_scalar("train/loss", loss, step)
writer.add_histogram("fc.weight", model.fc.weight, step)
writer.add_text("notes", "lr 3e-3, no dropout", 0)
writer.add_hparams({"lr": 3e-3, "optimizer": "adam"}, {"hparam/loss": 0.42})
writer.close()
```

The files are written by deepseek's Rust core (TFRecord framing, masked CRC-32C, the
``tensorboard.Event`` protobuf), so ``tensorboard --logdir runs`` reads them as it reads
PyTorch's.
"""

import datetime
import os
import socket

from .. import _C

__all__ = ["SummaryWriter"]


def _scalar(v, what):
    if hasattr(v, "item") and callable(v.item):
        if hasattr(v, "numel") and v.numel() != 1:
            raise ValueError(f"{what}: expected a scalar or a one-element tensor, got "
                             f"{v.numel()} elements")
        v = v.item()
    try:
        return float(v)
    except (TypeError, ValueError):
        raise TypeError(f"{what}: expected a number, got {type(v).__name__}") from None


def _flat(values):
    if hasattr(values, "detach") and hasattr(values, "tolist"):  # a deepseek/torch tensor
        values = values.detach().reshape(-1).tolist()
    elif hasattr(values, "ravel") and hasattr(values, "tolist"):  # numpy
        values = values.ravel().tolist()
    elif isinstance(values, (int, float)):
        values = [values]
    else:
        out = []
        stack = [values]
        while stack:
            v = stack.pop()
            if isinstance(v, (list, tuple)):
                stack.extend(reversed(v))
            else:
                out.append(v)
        values = out
    return [float(v) for v in values]


def _step(global_step):
    if global_step is None:
        return 0
    return int(_scalar(global_step, "global_step"))


class SummaryWriter:
    """Writes scalars, histograms, texts and hyper-parameters to an event file in
    ``log_dir`` (default ``runs/<date>_<host><comment>``), flushed every ``flush_secs``."""

    def __init__(self, log_dir=None, comment="", purge_step=None, max_queue=10, flush_secs=120,
                 filename_suffix=""):
        if log_dir is None:
            now = datetime.datetime.now().strftime("%b%d_%H-%M-%S")
            log_dir = os.path.join("runs", now + "_" + socket.gethostname() + comment)
        self.log_dir = str(log_dir)
        self.purge_step = purge_step
        self.max_queue = max_queue
        self._w = _C._SummaryWriter(self.log_dir, float(flush_secs), filename_suffix)

    def get_logdir(self):
        """The log directory."""
        return self.log_dir

    def add_scalar(self, tag, scalar_value, global_step=None, walltime=None, new_style=False,
                   double_precision=False):
        """Logs one scalar (a number or a one-element tensor)."""
        self._w.add_scalar(tag, _scalar(scalar_value, "add_scalar"), _step(global_step),
                           None if walltime is None else float(walltime))

    def add_scalars(self, main_tag, tag_scalar_dict, global_step=None, walltime=None):
        """Logs several scalars on one chart (each in the run ``<log_dir>/<main_tag>_<key>``)."""
        if not isinstance(tag_scalar_dict, dict):
            raise TypeError("add_scalars: tag_scalar_dict must be a dict of name -> number")
        items = [(str(k), _scalar(v, f"add_scalars[{k!r}]")) for k, v in tag_scalar_dict.items()]
        self._w.add_scalars(main_tag, items, _step(global_step))

    def add_histogram(self, tag, values, global_step=None, bins="tensorflow", walltime=None,
                      max_bins=None):
        """Logs a histogram of ``values`` (tensor, array or sequence); ``bins`` is
        ``'tensorflow'``, a number of equal-width buckets, or a sequence of edges."""
        if not isinstance(bins, (str, int)):
            bins = _flat(bins)
        self._w.add_histogram(tag, _flat(values), _step(global_step), bins)

    def add_text(self, tag, text_string, global_step=None, walltime=None):
        """Logs a (Markdown) text, shown in TensorBoard's TEXT tab."""
        self._w.add_text(tag, str(text_string), _step(global_step))

    def add_hparams(self, hparam_dict, metric_dict, hparam_domain_discrete=None, run_name=None,
                    global_step=None):
        """Logs a run's hyper-parameters with its final metrics (HPARAMS tab); written to
        the sub-run ``run_name`` (default: the current time), as PyTorch does."""
        if not isinstance(hparam_dict, dict) or not isinstance(metric_dict, dict):
            raise TypeError("hparam_dict and metric_dict should be dictionary.")
        hp = []
        for k, v in hparam_dict.items():
            if hasattr(v, "item") and callable(v.item):
                v = v.item()
            if v is not None and not isinstance(v, (int, float, str, bool)):
                raise ValueError(f"value of hparam {k!r} should be one of int, float, str, bool, "
                                 f"or torch.Tensor, got {type(v).__name__}")
            hp.append((str(k), "None" if v is None else v))
        metrics = [(str(k), _scalar(v, f"add_hparams metric {k!r}")) for k, v in metric_dict.items()]
        self._w.add_hparams(hp, metrics, run_name)

    def flush(self):
        """Writes pending events to disk."""
        self._w.flush()

    def close(self):
        """Flushes and closes the event files."""
        self._w.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
