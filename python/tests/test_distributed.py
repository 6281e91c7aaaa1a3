"""deepseek.distributed: error paths in this process, and multi-process jobs under mpirun
(python/tests/dist/*.py) when the package was built with the MPI backend."""
import os
import shutil
import subprocess
import sys

import pytest

import deepseek as torch
import deepseek.distributed as dist

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dist")
MPI = dist.is_mpi_available() and shutil.which("mpirun") is not None


def test_bad_backend_names():
    with pytest.raises(ValueError, match="unknown backend 'tcp'"):
        dist.init_process_group("tcp")
    with pytest.raises(RuntimeError, match="nccl"):
        dist.init_process_group("nccl")
    assert not dist.is_initialized()


def test_collectives_need_a_group():
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.all_reduce(torch.ones(2))
    with pytest.raises(RuntimeError, match="not initialised"):
        dist.get_rank()


def test_sampler_partitions_indices():
    parts = [list(dist.DistributedSampler(range(11), num_replicas=3, rank=r, seed=4))
             for r in range(3)]
    assert all(len(p) == 4 for p in parts)
    assert sorted(set(sum(parts, []))) == list(range(11))
    s = dist.DistributedSampler(range(11), num_replicas=3, rank=0, shuffle=False,
                                drop_last=True)
    assert list(s) == [0, 3, 6]
    with pytest.raises(ValueError):
        dist.DistributedSampler(range(4), num_replicas=2, rank=2)


def test_without_mpi_the_error_says_how_to_get_it():
    if dist.is_mpi_available():
        pytest.skip("this build has the MPI backend")
    with pytest.raises(RuntimeError, match="built without the MPI backend"):
        dist.init_process_group("mpi")


def mpirun(np, script, timeout=120, args=()):
    cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(np),
           sys.executable, os.path.join(HERE, script), *args]
    env = dict(os.environ, DEEPSEEK_DIST_TIMEOUT="60", DEEPSEEK_NUM_THREADS="1")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    return out


@pytest.mark.skipif(not MPI, reason="deepseek built without MPI, or no mpirun")
def test_collectives_two_ranks():
    assert mpirun(2, "py_collectives.py").count("collectives ok") == 2


@pytest.mark.skipif(not MPI, reason="deepseek built without MPI, or no mpirun")
def test_ddp_matches_single_process():
    assert mpirun(2, "py_ddp.py").count("ddp ok") == 2


@pytest.mark.skipif(not MPI, reason="deepseek built without MPI, or no mpirun")
def test_tutorial_tensor_parallel_snippet_four_ranks():
    assert mpirun(4, "tp_snippet.py", timeout=180).count("tensor parallel ok") == 4


@pytest.mark.skipif(not MPI, reason="deepseek built without MPI, or no mpirun")
def test_zero_redundancy_adamw_matches_adamw():
    assert mpirun(2, "py_zero.py").count("zero ok") == 2
    assert mpirun(3, "py_zero.py").count("zero ok") == 3


@pytest.mark.skipif(not MPI, reason="deepseek built without MPI, or no mpirun")
def test_pipeline_gpipe_and_1f1b_match_sequential():
    assert mpirun(2, "py_pipeline.py").count("pipeline ok") == 2


@pytest.mark.skipif(not MPI, reason="deepseek built without MPI, or no mpirun")
def test_parallel_attention_and_vocab_parallel_match_pytorch():
    pytest.importorskip("torch", reason="PyTorch computes the unsplit reference")
    assert mpirun(2, "py_tp_vocab.py", timeout=180).count("tp vocab ok") == 2


@pytest.mark.skipif(not MPI, reason="deepseek built without MPI, or no mpirun")
def test_tensor_parallel_split_attention_and_embedding_match_pytorch(tmp_path):
    pytest.importorskip("torch", reason="PyTorch computes the unsplit reference")
    out = mpirun(2, "py_tp_split.py", timeout=180, args=[str(tmp_path)])
    assert out.count("TensorParallel.split attention/embedding ok") == 2


def _read_safetensors_with_torch(path):
    """A safetensors file as a dict of real torch tensors: with the ``safetensors`` package
    when installed, else parsed here from the format's spec (u64 header length, JSON
    header, little-endian data)."""
    import json
    import struct

    import torch as real_torch
    try:
        from safetensors.torch import load_file
        return load_file(str(path))
    except ImportError:
        pass
    raw = open(path, "rb").read()
    (hl,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hl])
    dtypes = {"F32": real_torch.float32, "F64": real_torch.float64, "I64": real_torch.int64}
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        buf = bytearray(raw[8 + hl + a:8 + hl + b])
        out[k] = real_torch.frombuffer(buf, dtype=dtypes[v["dtype"]]).reshape(v["shape"])
    return out


@pytest.mark.skipif(not MPI, reason="deepseek built without MPI, or no mpirun")
def test_sharded_checkpoint_resume_consolidate_and_load_in_pytorch(tmp_path):
    import torch as real_torch

    from deepseek.distributed import checkpoint as dcp
    out = mpirun(2, "py_sharded_ckpt.py", timeout=240, args=[str(tmp_path)])
    assert out.count("sharded ckpt ok") == 2, out
    # The consolidated state dict loads into the unsplit PyTorch modules (strict) and
    # equals the full tensors gathered at the save.
    full = _read_safetensors_with_torch(tmp_path / "tp_full.safetensors")
    want = _read_safetensors_with_torch(tmp_path / "tp_expected.safetensors")

    class Net(real_torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = real_torch.nn.LSTM(6, 8)
            self.fc1 = real_torch.nn.Linear(8, 12)
            self.fc2 = real_torch.nn.Linear(12, 3)

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.fc2(real_torch.tanh(self.fc1(out[-1])))

    net = Net()
    net.load_state_dict(full, strict=True)
    for k, v in net.state_dict().items():
        assert real_torch.equal(v, want[k]), k
    # ... and into the unsplit deepseek model, which computes what PyTorch computes.
    ds_net = torch.nn.Module()
    ds_net.lstm, ds_net.fc1, ds_net.fc2 = torch.nn.LSTM(6, 8), torch.nn.Linear(8, 12), \
        torch.nn.Linear(12, 3)
    ds_net.load_state_dict(torch.load(tmp_path / "tp_full.safetensors"))
    x = real_torch.randn(5, 4, 6)
    xd = torch.tensor(x.tolist())
    o, _ = ds_net.lstm(xd)
    yd = ds_net.fc2(torch.tanh(ds_net.fc1(o[-1])))
    y = net(x)
    assert (real_torch.tensor(yd.tolist()) - y.detach()).abs().max().item() < 1e-5
    # The optimizer state: PyTorch's per-parameter layout, by name.
    opt = _read_safetensors_with_torch(tmp_path / "tp_full.optim.safetensors")
    for k, v in net.state_dict().items():
        assert opt[f"state.{k}.exp_avg"].shape == v.shape
        assert opt[f"state.{k}.exp_avg_sq"].shape == v.shape
        assert opt[f"state.{k}.step"].item() == 3.0
    # The CLI writes the same file, when built.
    cli = os.path.join(os.path.dirname(__file__), "..", "..", "target", "release", "deepseek")
    if os.path.exists(cli):
        r = subprocess.run([cli, "consolidate", str(tmp_path / "tp"),
                            str(tmp_path / "cli.safetensors")], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "cli.safetensors").read_bytes() == \
            (tmp_path / "tp_full.safetensors").read_bytes()
    # Errors, in this single process: a missing rank file, a corrupt one, no index.
    good = tmp_path / "tp"
    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    (bad / dcp.rank_file_name(1, 2)).unlink()
    with pytest.raises(OSError, match="rank 1's file rank-00001-of-00002.safetensors is missing"):
        dcp.consolidate(bad, tmp_path / "x.safetensors")
    shutil.rmtree(bad)
    shutil.copytree(good, bad)
    f = bad / dcp.rank_file_name(0, 2)
    b = bytearray(f.read_bytes())
    b[-5] ^= 1
    f.write_bytes(bytes(b))
    with pytest.raises(OSError, match="corrupt rank file"):
        dcp.consolidate(bad, tmp_path / "x.safetensors")
    (bad / "index.json").unlink()
    with pytest.raises(OSError, match="index.json is missing"):
        dcp.consolidate(bad, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()
    # Another world size: refused, saying to consolidate first.
    out = mpirun(3, "py_sharded_ckpt.py", args=[str(tmp_path), "resize"])
    assert out.count("resize refused ok") == 3, out
