"""QDQ ONNX export of statically quantized deepseek models: onnx.checker accepts the file,
ONNX Runtime runs it, and its outputs agree with deepseek's int8 model within one quantization
step (at two batch sizes, with a dynamic batch axis)."""

import numpy as np
import pytest

import deepseek
from deepseek import nn
from deepseek.ao import quantization as dq

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant = dq.QuantStub()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=2)
        self.relu2 = nn.ReLU()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(8, 16)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(16, 4)
        self.dequant = dq.DeQuantStub()

    def forward(self, x):
        x = self.pool(self.relu1(self.bn1(self.conv1(self.quant(x)))))
        x = self.flatten(self.gap(self.relu2(self.conv2(x))))
        return self.dequant(self.fc2(self.relu3(self.fc1(x))))


def _quantized(qconfig):
    deepseek.manual_seed(0)
    m = _Net().eval()
    m.qconfig = qconfig
    m = dq.fuse_modules(m, [["conv1", "bn1", "relu1"], ["conv2", "relu2"], ["fc1", "relu3"]])
    p = dq.prepare(m)
    rng = np.random.default_rng(0)
    for _ in range(3):
        p(deepseek.tensor(rng.standard_normal((8, 1, 12, 12)).astype(np.float32)))
    return dq.convert(p)


@pytest.mark.parametrize("backend", ["x86", "qnnpack"])
def test_qdq_export_runs_in_onnxruntime(tmp_path, backend):
    qm = _quantized(dq.get_default_qconfig(backend))
    path = tmp_path / "q.onnx"
    x = deepseek.tensor(np.random.default_rng(1).standard_normal((2, 1, 12, 12))
                        .astype(np.float32))
    deepseek.onnx.export(qm, (x,), str(path), input_names=["x"], output_names=["y"],
                         dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "MatMul"} <= ops
    # the weights are stored as 8-bit integers
    for init in model.graph.initializer:
        if init.name.endswith("weight_quantized"):
            assert init.data_type == onnx.TensorProto.UINT8
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    step = qm.fc2.scale
    for batch in (2, 5):
        a = np.random.default_rng(batch).standard_normal((batch, 1, 12, 12)).astype(np.float32)
        yd = qm(deepseek.tensor(a)).numpy()
        (yo,) = sess.run(None, {"x": a})
        assert yo.shape == yd.shape
        assert np.abs(yo - yd).max() <= step * 1.01 + 1e-6, np.abs(yo - yd).max() / step


def test_qdq_export_refuses_float_ops_on_quantized_values(tmp_path):
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant = dq.QuantStub()
            self.fc = nn.Linear(4, 4)
            self.dequant = dq.DeQuantStub()

        def forward(self, x):
            return self.dequant(self.fc(self.quant(x)).reshape(2, 2))

    m = Bad().eval()
    m.qconfig = dq.get_default_qconfig("x86")
    p = dq.prepare(m)
    p(deepseek.randn(1, 4))
    qm = dq.convert(p)
    with pytest.raises(deepseek.onnx.ExportError, match="quantized input"):
        deepseek.onnx.export(qm, (deepseek.randn(1, 4),), str(tmp_path / "bad.onnx"))
