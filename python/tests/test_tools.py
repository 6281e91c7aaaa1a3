"""The training tools against the real tools their users open: TensorBoard's
EventAccumulator reads deepseek's event files, promtool checks the Prometheus metrics,
Python's json reads the Chrome trace. tensorboard and promtool are installed by
scripts/test.sh (the tests fail, not skip, when they are missing)."""

import json
import math
import os
import shutil
import socket
import subprocess
import urllib.request

import pytest

import deepseek
from deepseek import nn
from deepseek.monitor import MetricsServer
from deepseek.profiler import profile, record_function, schedule
from deepseek.utils.tensorboard import SummaryWriter


def _accumulator(path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "histograms": 0,
                                                     "tensors": 0})
    acc.Reload()
    return acc


def _event_files(d):
    return [os.path.join(d, f) for f in os.listdir(d) if f.startswith("events.out.tfevents.")]


def test_summary_writer_read_back_by_tensorboard(tmp_path):
    d = tmp_path / "run"
    w = SummaryWriter(str(d))
    for s in range(50):
        w.add_scalar("train/loss", 1.0 / (s + 1), s)
    w.add_scalar("tensor_value", deepseek.tensor(2.5), 50)
    for s in range(10):
        w.add_scalars("losses", {"train": s * 0.5, "val": s * 0.25}, s)
    vals = deepseek.arange(0, 1000, dtype=deepseek.float32) / 100.0 - 5.0
    for s in range(3):
        w.add_histogram("weights", vals * (s + 1), s)
    w.add_histogram("fixed", [0.0, 1.0, 1.5, 2.0, 3.0], 0, bins=3)
    w.add_text("notes", "first **run**", 0)
    w.add_text("notes", "second", 1)
    w.close()

    acc = _accumulator(d)
    tags = acc.Tags()
    assert set(tags["scalars"]) == {"train/loss", "tensor_value"}
    loss = acc.Scalars("train/loss")
    assert len(loss) == 50  # a record with a bad CRC would be dropped silently
    assert [e.step for e in loss] == list(range(50))
    for e in loss:
        assert e.value == pytest.approx(1.0 / (e.step + 1), rel=1e-6)
    assert acc.Scalars("tensor_value")[0].value == 2.5

    hist = acc.Histograms("weights")
    assert len(hist) == 3
    for e in hist:
        h = e.histogram_value
        k = e.step + 1
        assert h.num == 1000 and sum(h.bucket) == 1000
        assert h.min == pytest.approx(-5.0 * k) and h.max == pytest.approx(4.99 * k, rel=1e-5)
        assert h.sum == pytest.approx(sum((i / 100.0 - 5.0) * k for i in range(1000)), abs=1e-2)
    fixed = acc.Histograms("fixed")[0].histogram_value
    assert list(fixed.bucket) == [1.0, 2.0, 2.0] and list(fixed.bucket_limit) == [1.0, 2.0, 3.0]

    texts = acc.Tensors("notes/text_summary")
    assert [t.tensor_proto.string_val[0].decode() for t in texts] == ["first **run**", "second"]

    # add_scalars: one sub-run per key, tag = main tag (as PyTorch writes them).
    for key, f in (("train", 0.5), ("val", 0.25)):
        sub = _accumulator(d / f"losses_{key}")
        ev = sub.Scalars("losses")
        assert len(ev) == 10 and [e.value for e in ev] == [s * f for s in range(10)]


def test_corrupted_record_is_dropped_by_tensorboard(tmp_path):
    # The counts above are meaningful: EventAccumulator drops records whose CRC fails.
    d = tmp_path / "run"
    with SummaryWriter(str(d)) as w:
        for s in range(5):
            w.add_scalar("x", float(s), s)
    (f,) = _event_files(d)
    data = bytearray(open(f, "rb").read())
    data[-6] ^= 0xFF  # inside the last record's payload
    open(f, "wb").write(bytes(data))
    assert len(_accumulator(d).Scalars("x")) < 5


def test_add_hparams_read_by_the_hparams_plugin(tmp_path):
    from tensorboard.plugins.hparams import plugin_data_pb2
    d = tmp_path / "run"
    w = SummaryWriter(str(d))
    w.add_hparams({"lr": 3e-3, "batch": 32, "optimizer": "adam", "nesterov": True},
                  {"hparam/loss": 0.42, "hparam/acc": 0.9}, run_name="trial0")
    w.close()
    acc = _accumulator(d / "trial0")
    content = acc.PluginTagToContent("hparams")
    assert set(content) == {"_hparams_/experiment", "_hparams_/session_start_info",
                            "_hparams_/session_end_info"}
    exp = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    assert [h.name for h in exp.experiment.hparam_infos] == ["lr", "batch", "optimizer", "nesterov"]
    assert {m.name.tag for m in exp.experiment.metric_infos} == {"hparam/loss", "hparam/acc"}
    start = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["lr"].number_value == 3e-3
    assert start.hparams["batch"].number_value == 32
    assert start.hparams["optimizer"].string_value == "adam"
    assert start.hparams["nesterov"].bool_value is True
    end = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_end_info"])
    assert end.session_end_info.status == 1
    assert acc.Scalars("hparam/loss")[0].value == pytest.approx(0.42)
    assert acc.Scalars("hparam/acc")[0].value == pytest.approx(0.9)


def test_summary_writer_bad_input(tmp_path):
    w = SummaryWriter(str(tmp_path / "r"))
    with pytest.raises(ValueError, match="finite"):
        w.add_histogram("h", [1.0, float("nan")], 0)
    with pytest.raises(ValueError, match="empty"):
        w.add_histogram("h", [], 0)
    with pytest.raises(ValueError, match="global_step"):
        w.add_scalar("x", 1.0, -1)
    with pytest.raises(ValueError, match="one-element"):
        w.add_scalar("x", deepseek.ones(3), 0)
    with pytest.raises(ValueError, match="should be one of"):
        w.add_hparams({"lr": [1, 2]}, {"m": 1.0})
    w.close()
    w.close()  # twice is fine
    with pytest.raises(ValueError, match="closed"):
        w.add_scalar("x", 1.0, 0)
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OSError, match="directory"):
        SummaryWriter(str(f))


def test_profiler_table_flops_shapes_and_trace(tmp_path):
    a = deepseek.randn(64, 32)
    b = deepseek.randn(32, 16)
    with profile(record_shapes=True, profile_memory=True, with_flops=True) as prof:
        with record_function("block"):
            c = a @ b
            d = (c * 2.0).sum()
    del d
    rows = {r.key: r for r in prof.key_averages()}
    assert rows["matmul"].count == 1 and rows["matmul"].flops == 2 * 64 * 32 * 16
    assert rows["block"].cpu_time_total >= rows["matmul"].cpu_time_total
    assert rows["block"].self_cpu_time_total <= rows["block"].cpu_time_total
    assert rows["matmul"].cpu_memory_usage >= 64 * 16 * 4
    by_shape = {(r.key, str(r.input_shapes)) for r in prof.key_averages(group_by_input_shape=True)}
    assert ("matmul", "[[64, 32], [32, 16]]") in by_shape
    t = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=5)
    assert "matmul" in t and "Self CPU time total" in t and "Total MFLOPs" in t
    with pytest.raises(ValueError, match="sort_by"):
        prof.key_averages().table(sort_by="cuda_time_total")
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    tr = json.load(open(path))
    xs = [e for e in tr["traceEvents"] if e["ph"] == "X"]
    names = {e["name"] for e in xs}
    assert {"matmul", "block"} <= names
    mm = next(e for e in xs if e["name"] == "matmul")
    blk = next(e for e in xs if e["name"] == "block")
    assert mm["args"]["Input Dims"] == [[64, 32], [32, 16]] and mm["args"]["FLOPs"] == 65536
    assert blk["ts"] <= mm["ts"] and mm["ts"] + mm["dur"] <= blk["ts"] + blk["dur"] + 1e-3
    assert any(e["ph"] == "C" and e["name"] == "Memory" for e in tr["traceEvents"])


def test_profiler_off_records_nothing_and_one_at_a_time():
    p = profile()
    with p:
        with pytest.raises(ValueError, match="already recording"):
            profile().start()
    n = len(p.events())
    deepseek.randn(8, 8) @ deepseek.randn(8, 8)
    assert len(p.events()) == n  # stopped: nothing more recorded


def test_profiler_schedule_and_on_trace_ready(tmp_path):
    ready = []
    x = deepseek.randn(16, 16)
    with profile(schedule=schedule(wait=1, warmup=1, active=2, repeat=1),
                 on_trace_ready=lambda p: ready.append(len(p.events()))) as prof:
        for _ in range(6):
            x @ x
            prof.step()
    assert len(ready) == 1
    ev = prof.events()
    steps = sorted(e["name"] for e in ev if e["category"] == "step")
    assert steps == ["ProfilerStep#2", "ProfilerStep#3"]
    assert sum(e["name"] == "matmul" for e in ev) == 2  # the active steps' only


def test_profile_of_a_failing_run_still_exports(tmp_path):
    prof = profile()
    with pytest.raises(ValueError):
        with prof:
            deepseek.randn(4, 4) @ deepseek.randn(4, 4)
            deepseek.randn(4, 3) @ deepseek.randn(4, 3)  # shape error
    path = tmp_path / "t.json"
    prof.export_chrome_trace(str(path))
    names = [e["name"] for e in json.load(open(path))["traceEvents"] if e["ph"] == "X"]
    assert "matmul" in names


def _promtool():
    exe = shutil.which("promtool")
    assert exe, "promtool not found: scripts/test.sh installs Debian's prometheus package"
    return exe


def test_metrics_server_promtool_and_port_in_use():
    with MetricsServer(port=0, host="127.0.0.1") as s:
        s.record_step(loss=0.5, lr=1e-3, units=32, unit="samples", step_seconds=0.1)
        s.record_val_loss(0.7)
        s.record_checkpoint()
        body = urllib.request.urlopen(s.url, timeout=10).read().decode()
        assert "deepseek_train_steps_total 1" in body
        assert "deepseek_train_loss 0.5" in body and "deepseek_val_loss 0.7" in body
        assert 'deepseek_train_units_total{unit="samples"} 32' in body
        r = subprocess.run([_promtool(), "check", "metrics"], input=body, text=True,
                           capture_output=True)
        assert r.returncode == 0, r.stdout + r.stderr
        with pytest.raises(RuntimeError, match="already in use"):
            MetricsServer(port=s.port, host="127.0.0.1")
    with pytest.raises(ValueError, match="port"):
        MetricsServer(port=70000)


def test_trainer_logs_to_tensorboard_prometheus_and_profiler(tmp_path):
    from deepseek.trainer import Trainer
    deepseek.manual_seed(0)
    x = deepseek.randn(64, 4)
    y = (x.sum(1) > 0).long()
    loader = deepseek.utils.data.DataLoader(deepseek.utils.data.TensorDataset(x, y),
                                            batch_size=16)
    model = nn.Linear(4, 2)
    prof = profile(with_flops=True)
    tr = Trainer(model, tensorboard=str(tmp_path / "tb"), metrics_port=0, profiler=prof)
    tr.fit(loader, loader, epochs=2, verbose=False)
    body = urllib.request.urlopen(f"http://127.0.0.1:{tr.metrics_server.port}/metrics",
                                  timeout=10).read().decode()
    assert "deepseek_train_steps_total 8" in body
    tr.metrics_server.close()
    tr.writer.close()
    acc = _accumulator(tmp_path / "tb")
    assert len(acc.Scalars("train/loss")) == 8 == tr.global_step
    assert len(acc.Scalars("val/loss")) == 2
    assert [e.value for e in acc.Scalars("val/loss")] == pytest.approx(tr.history["val_loss"])
    assert any(r.key == "matmul" and r.flops > 0 for r in prof.key_averages())
