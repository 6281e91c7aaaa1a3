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


def mpirun(np, script, timeout=120):
    cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(np),
           sys.executable, os.path.join(HERE, script)]
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
